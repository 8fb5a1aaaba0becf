import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file read and written at byte offsets with positioned I/O (pread/pwrite), whole ranges at a time.
///
/// This is one of the few types that touches raw buffers; everything above it speaks in offsets.
final class BlockFile {
  let path: String
  let isWritable: Bool
  fileprivate let descriptor: FileDescriptor
  /// The file's length in bytes, kept current as this object writes past the end.
  private(set) var size: UInt64
  private var isClosed = false

  init(openingAt path: String, writable: Bool) throws {
    self.path = path
    isWritable = writable
    do {
      // Non-blocking first: opening a FIFO (a parent locator can name any path) must not hang.
      descriptor = try FileDescriptor.open(
        FilePath(path), writable ? .readWrite : .readOnly, options: [.closeOnExec, .nonBlocking])
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot open: \(error)")
    }
    do {
      var info = stat()
      guard fstat(descriptor.rawValue, &info) == 0 else { throw Errno(rawValue: errno) }
      guard info.st_mode & S_IFMT == S_IFREG else {
        throw VHDError(
          path: path, field: "file", .invalidArgument,
          "is \(BlockFile.kind(of: info.st_mode)), not a regular file; a VHD must be a file")
      }
      _ = fcntl(descriptor.rawValue, F_SETFL, fcntl(descriptor.rawValue, F_GETFL) & ~O_NONBLOCK)
      size = UInt64(try descriptor.seek(offset: 0, from: .end))
    } catch {
      try? descriptor.close()
      if let error = error as? Errno { throw VHDError(path: path, field: "file", .io, "cannot open: \(error)") }
      throw error
    }
  }

  private static func kind(of mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a folder"
    case S_IFIFO: return "a FIFO"
    case S_IFCHR, S_IFBLK: return "a device"
    case S_IFSOCK: return "a socket"
    default: return "a special file"
    }
  }

  init(creatingAt path: String, overwrite: Bool = false) throws {
    self.path = path
    isWritable = true
    var options: FileDescriptor.OpenOptions = [.create, .closeOnExec]
    options.insert(overwrite ? .truncate : .exclusiveCreate)
    do {
      descriptor = try FileDescriptor.open(
        FilePath(path), .readWrite, options: options, permissions: [.ownerReadWrite, .groupRead, .otherRead])
    } catch Errno.fileExists {
      throw VHDError(
        path: path, field: "file", .invalidArgument, "already exists; choose another path or remove it first")
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot create: \(error)")
    }
    size = 0
  }

  deinit {
    if !isClosed { try? descriptor.close() }
  }

  func close() {
    guard !isClosed else { return }
    isClosed = true
    try? descriptor.close()
  }

  /// Reads exactly `buffer.count` bytes at `offset`; bytes past the end of the file read as zeros.
  func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    var done = 0
    while done < buffer.count {
      let position = offset + UInt64(done)
      if position >= size { break }
      let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
      let count: Int
      do {
        count = try descriptor.read(fromAbsoluteOffset: Int64(position), into: chunk)
      } catch let error as Errno {
        throw VHDError(path: path, field: "file", .io, "read of \(chunk.count) bytes at \(position) failed: \(error)")
      }
      if count == 0 { break }
      done += count
    }
    if done < buffer.count {
      UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
    }
  }

  /// Reads like `read(at:into:)` but without consulting `size`, which a writer on another thread may be
  /// changing: positioned reads until the end of the file, zeros after it. Safe from several threads.
  func readConcurrently(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    var done = 0
    while done < buffer.count {
      let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
      let count: Int
      do {
        count = try descriptor.read(fromAbsoluteOffset: Int64(offset) + Int64(done), into: chunk)
      } catch let error as Errno {
        throw VHDError(
          path: path, field: "file", .io, "read of \(chunk.count) bytes at \(offset + UInt64(done)) failed: \(error)")
      }
      if count == 0 { break }
      done += count
    }
    if done < buffer.count {
      UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
    }
  }

  /// Reads `count` bytes at `offset`, failing when the range is not wholly inside the file.
  func read(at offset: UInt64, count: Int, field: String) throws -> [UInt8] {
    guard offset <= size, UInt64(count) <= size - offset else {
      throw VHDError(
        path: path, field: field, .outOfBounds,
        "needs \(count) bytes at offset \(offset) but the file has \(size) bytes (truncated?)")
    }
    var bytes = [UInt8](repeating: 0, count: count)
    try bytes.withUnsafeMutableBytes { try read(at: offset, into: $0) }
    return bytes
  }

  func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    precondition(isWritable, "write to a read-only BlockFile")
    do {
      _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), buffer)
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "write of \(buffer.count) bytes at \(offset) failed: \(error)")
    }
    size = max(size, offset + UInt64(buffer.count))
  }

  /// Writes inside the file's current length; unlike `write`, safe to call from several threads at
  /// once for ranges that do not overlap (pwrite is atomic per call and nothing here changes).
  func overwrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    precondition(isWritable && offset + UInt64(buffer.count) <= size, "overwrite outside the file")
    do {
      _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), buffer)
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "write of \(buffer.count) bytes at \(offset) failed: \(error)")
    }
  }

  /// Copies `count` bytes from `source` at `sourceOffset` to this file at `offset` inside the kernel
  /// (copy_file_range), which spares the copy through user memory; falls back to read and write.
  func copy(from source: BlockFile, at sourceOffset: UInt64, to offset: UInt64, count: Int, buffer: IOBuffer) throws {
    precondition(isWritable && offset + UInt64(count) <= size, "copy outside the file")
    var done = 0
    if let copyFileRange = KernelCopy.function {
      while done < count {
        var input = Int64(sourceOffset) + Int64(done)
        var output = Int64(offset) + Int64(done)
        let copied = copyFileRange(source.descriptor.rawValue, &input, descriptor.rawValue, &output, count - done, 0)
        if copied <= 0 { break }
        done += copied
      }
    }
    while done < count {
      let chunk = buffer.slice(0..<min(buffer.bytes.count, count - done))
      try source.read(at: sourceOffset + UInt64(done), into: chunk)
      try overwrite(UnsafeRawBufferPointer(chunk), at: offset + UInt64(done))
      done += chunk.count
    }
  }

  func write(_ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { try write($0, at: offset) }
  }

  /// Sets the file's length; growing leaves a hole that reads as zeros and takes no space.
  func resize(to newSize: UInt64) throws {
    do {
      try descriptor.resize(to: Int64(newSize))
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot resize to \(newSize) bytes: \(error)")
    }
    size = newSize
  }

  /// Asks the kernel to start writing a range back now (sync_file_range with WRITE), without waiting:
  /// a long copy that ends in `synchronize` then overlaps its writing with its copying.
  func startWriteback(at offset: UInt64, count: Int) {
    _ = KernelCopy.syncFileRange?(descriptor.rawValue, Int64(offset), Int64(count), 2)
  }

  /// Tells the kernel the cached pages of a range will not be read again (POSIX_FADV_DONTNEED);
  /// never loses data. Freeing them early makes removing a large file afterwards cheap.
  func dropCache(at offset: UInt64, count: Int) {
    _ = posix_fadvise(descriptor.rawValue, off_t(offset), off_t(count), 4)
  }

  /// Frees the file space of a range, which then reads as zeros, keeping the file's length
  /// (fallocate PUNCH_HOLE | KEEP_SIZE). False where the file system or platform cannot.
  func punchHole(at offset: UInt64, count: UInt64) -> Bool {
    precondition(isWritable, "punching a hole in a read-only BlockFile")
    guard let fallocate = KernelCopy.fallocate, count > 0 else { return false }
    return fallocate(descriptor.rawValue, 0x02 | 0x01, Int64(offset), Int64(count)) == 0
  }

  /// Forces written data to stable storage: merges rely on it before anything is deleted.
  func synchronize() throws {
    if fsync(descriptor.rawValue) != 0 {
      throw VHDError(path: path, field: "file", .io, "fsync failed: \(Errno(rawValue: errno))")
    }
  }

  /// The next offset at or after `offset` that holds data, skipping holes (SEEK_DATA), or nil at the end.
  func nextData(from offset: UInt64) -> UInt64? {
    // SEEK_DATA is 3 on Linux (and 4 on Darwin); Glibc hides the macro without _GNU_SOURCE.
    #if os(Linux)
      let seekData: Int32 = 3
    #else
      let seekData: Int32 = 4
    #endif
    let result = lseek(descriptor.rawValue, off_t(offset), seekData)
    if result < 0 { return errno == ENXIO ? nil : offset }
    return UInt64(result)
  }

  /// Bytes the file occupies on its file system (sparse files take less than their length).
  var allocatedBytes: UInt64 {
    var info = stat()
    guard fstat(descriptor.rawValue, &info) == 0 else { return size }
    return UInt64(info.st_blocks) * 512
  }

  var modificationTime: Double {
    var info = stat()
    guard fstat(descriptor.rawValue, &info) == 0 else { return 0 }
    return Double(info.st_mtim.tv_sec)
  }
}

/// copy_file_range(2), sync_file_range(2) and fallocate(2), looked up at run time: Glibc declares
/// them only under _GNU_SOURCE, which Swift's Glibc module does not define.
enum KernelCopy {
  typealias Fallocate = @convention(c) (Int32, Int32, Int64, Int64) -> Int32

  static let fallocate: Fallocate? = symbol("fallocate").map { unsafeBitCast($0, to: Fallocate.self) }

  typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32

  static let syncFileRange: SyncFileRange? = symbol("sync_file_range").map { unsafeBitCast($0, to: SyncFileRange.self) }

  private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
    #if os(Linux)
      return dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
    #else
      return nil
    #endif
  }

  typealias Function =
    @convention(c) (
      Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
    ) -> Int

  static let function: Function? = symbol("copy_file_range").map { unsafeBitCast($0, to: Function.self) }
}

/// A page-aligned scratch buffer for block I/O, freed when released.
final class IOBuffer {
  let bytes: UnsafeMutableRawBufferPointer

  init(count: Int) {
    bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 4096)
  }

  deinit { bytes.deallocate() }

  func slice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(rebasing: bytes[range])
  }
}

extension UnsafeRawBufferPointer {
  /// True when every byte is zero; reads eight bytes at a time.
  var isAllZero: Bool {
    guard let base = baseAddress else { return true }
    let words = count / 8
    var index = 0
    while index < words {
      if base.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
      index += 1
    }
    for offset in (words * 8)..<count where base.load(fromByteOffset: offset, as: UInt8.self) != 0 {
      return false
    }
    return true
  }
}
