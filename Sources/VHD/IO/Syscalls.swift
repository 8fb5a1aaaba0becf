import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One open file and the system calls the VHD module makes on it, all in this file (as swift-system
/// keeps its own in one place): each wrapper takes and returns Swift types and throws a `VHDError`
/// that names the file and what failed. `BlockFile` is built on these; nothing else in the module
/// calls the C library for file I/O.
struct SystemFile {
  let path: String
  private let descriptor: FileDescriptor

  private init(path: String, descriptor: FileDescriptor) {
    self.path = path
    self.descriptor = descriptor
  }

  /// What `fstat` says of an open file.
  struct Status {
    enum Kind: Equatable {
      case regular, folder, fifo, device, socket, other
    }
    var kind: Kind
    /// Bytes the file takes on its file system (st_blocks × 512: holes excluded).
    var allocatedBytes: UInt64
    /// Seconds since 1970 of the last change to the file's data.
    var modificationTime: Double
  }

  /// Opens an existing regular file. Non-blocking at first, so that opening a FIFO (a parent locator
  /// can name any path) cannot hang; anything but a regular file is refused, naming what it is.
  static func open(_ path: String, writable: Bool) throws -> SystemFile {
    let descriptor: FileDescriptor
    do {
      descriptor = try FileDescriptor.open(
        FilePath(path), writable ? .readWrite : .readOnly, options: [.closeOnExec, .nonBlocking])
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot open: \(error)")
    }
    let file = SystemFile(path: path, descriptor: descriptor)
    do {
      let kind = try file.status().kind
      guard kind == .regular else {
        throw VHDError(
          path: path, field: "file", .invalidArgument, "is \(kind.article), not a regular file; a VHD must be a file")
      }
      try file.clearNonBlocking()
    } catch {
      file.close()
      throw error
    }
    return file
  }

  /// Creates a file for reading and writing: a new one (failing when the path exists), or with
  /// `overwrite`, replacing an existing file's contents.
  static func create(_ path: String, overwrite: Bool) throws -> SystemFile {
    var options: FileDescriptor.OpenOptions = [.create, .closeOnExec]
    options.insert(overwrite ? .truncate : .exclusiveCreate)
    do {
      let descriptor = try FileDescriptor.open(
        FilePath(path), .readWrite, options: options, permissions: [.ownerReadWrite, .groupRead, .otherRead])
      return SystemFile(path: path, descriptor: descriptor)
    } catch Errno.fileExists {
      throw VHDError(
        path: path, field: "file", .invalidArgument, "already exists; choose another path or remove it first")
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot create: \(error)")
    }
  }

  func close() {
    try? descriptor.close()
  }

  func status() throws -> Status {
    var info = stat()
    guard fstat(descriptor.rawValue, &info) == 0 else { throw failure("fstat") }
    let kind: Status.Kind
    switch info.st_mode & S_IFMT {
    case S_IFREG: kind = .regular
    case S_IFDIR: kind = .folder
    case S_IFIFO: kind = .fifo
    case S_IFCHR, S_IFBLK: kind = .device
    case S_IFSOCK: kind = .socket
    default: kind = .other
    }
    #if canImport(Darwin)
      let modified = Double(info.st_mtimespec.tv_sec)
    #else
      let modified = Double(info.st_mtim.tv_sec)
    #endif
    return Status(kind: kind, allocatedBytes: UInt64(info.st_blocks) * 512, modificationTime: modified)
  }

  /// The file's length (lseek to the end).
  func length() throws -> UInt64 {
    do {
      return UInt64(try descriptor.seek(offset: 0, from: .end))
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot find the file's length: \(error)")
    }
  }

  private func clearNonBlocking() throws {
    let flags = fcntl(descriptor.rawValue, F_GETFL)
    guard flags >= 0, fcntl(descriptor.rawValue, F_SETFL, flags & ~O_NONBLOCK) == 0 else { throw failure("fcntl") }
  }

  /// One pread: up to `buffer.count` bytes at `offset`; 0 at the end of the file.
  func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    do {
      return try descriptor.read(fromAbsoluteOffset: Int64(offset), into: buffer)
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "read of \(buffer.count) bytes at \(offset) failed: \(error)")
    }
  }

  /// pwrite until every byte of `buffer` is written at `offset`.
  func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    do {
      _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), buffer)
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "write of \(buffer.count) bytes at \(offset) failed: \(error)")
    }
  }

  /// ftruncate: growing leaves a hole that reads as zeros and takes no space.
  func resize(to size: UInt64) throws {
    do {
      try descriptor.resize(to: Int64(size))
    } catch let error as Errno {
      throw VHDError(path: path, field: "file", .io, "cannot resize to \(size) bytes: \(error)")
    }
  }

  /// fsync: everything written reaches stable storage.
  func synchronize() throws {
    guard fsync(descriptor.rawValue) == 0 else { throw failure("fsync") }
  }

  /// sync_file_range(WRITE): starts writing a range back without waiting. Advice only: where the
  /// call is missing or fails, the final `synchronize` still writes everything.
  func startWriteback(at offset: UInt64, count: Int) {
    _ = KernelCalls.syncFileRange?(descriptor.rawValue, Int64(offset), Int64(count), 2)
  }

  /// posix_fadvise(DONTNEED): the cached pages of a range will not be read again. Advice only.
  func dropCache(at offset: UInt64, count: Int) {
    _ = posix_fadvise(descriptor.rawValue, off_t(offset), off_t(count), 4)
  }

  /// posix_fadvise(WILLNEED): starts reading a range into the page cache now, without waiting.
  /// Advice only.
  func prefetch(at offset: UInt64, count: Int) {
    _ = posix_fadvise(descriptor.rawValue, off_t(offset), off_t(count), 3)
  }

  /// fallocate(PUNCH_HOLE | KEEP_SIZE): frees a range's space, which then reads as zeros, and keeps
  /// the length. False where the call is missing or the file system cannot.
  func punchHole(at offset: UInt64, count: UInt64) -> Bool {
    guard let fallocate = KernelCalls.fallocate else { return false }
    return fallocate(descriptor.rawValue, 0x02 | 0x01, Int64(offset), Int64(count)) == 0
  }

  /// lseek(SEEK_DATA): the first offset at or after `offset` that holds data, or nil when only a hole
  /// follows. A file system without SEEK_DATA answers `offset` (everything counts as data).
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

  /// copy_file_range: copies up to `count` bytes from `source` at `sourceOffset` to this file at
  /// `offset` inside the kernel, and returns how many it copied. Fewer than `count` (0 where the
  /// call is missing, or across file systems) leaves the rest to the caller's read and write.
  func copy(from source: SystemFile, at sourceOffset: UInt64, to offset: UInt64, count: Int) -> Int {
    guard let copyFileRange = KernelCalls.copyFileRange else { return 0 }
    var done = 0
    while done < count {
      var input = Int64(sourceOffset) + Int64(done)
      var output = Int64(offset) + Int64(done)
      let copied = copyFileRange(
        source.descriptor.rawValue, &input, descriptor.rawValue, &output, count - done, 0)
      if copied <= 0 { break }
      done += copied
    }
    return done
  }

  private func failure(_ call: String) -> VHDError {
    VHDError(path: path, field: "file", .io, "\(call) failed: \(Errno(rawValue: errno))")
  }
}

extension SystemFile.Status.Kind {
  fileprivate var article: String {
    switch self {
    case .regular: return "a regular file"
    case .folder: return "a folder"
    case .fifo: return "a FIFO"
    case .device: return "a device"
    case .socket: return "a socket"
    case .other: return "a special file"
    }
  }
}

/// copy_file_range(2), sync_file_range(2) and fallocate(2), looked up at run time: Glibc declares
/// them only under _GNU_SOURCE, which Swift's Glibc module does not define.
private enum KernelCalls {
  typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
  typealias Fallocate = @convention(c) (Int32, Int32, Int64, Int64) -> Int32
  typealias CopyFileRange =
    @convention(c) (
      Int32, UnsafeMutablePointer<Int64>?, Int32, UnsafeMutablePointer<Int64>?, Int, UInt32
    ) -> Int

  static let syncFileRange: SyncFileRange? = symbol("sync_file_range").map {
    unsafeBitCast($0, to: SyncFileRange.self)
  }
  static let copyFileRange: CopyFileRange? = symbol("copy_file_range").map {
    unsafeBitCast($0, to: CopyFileRange.self)
  }
  static let fallocate: Fallocate? = symbol("fallocate").map { unsafeBitCast($0, to: Fallocate.self) }

  private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
    #if os(Linux)
      return dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)
    #else
      return nil
    #endif
  }
}
