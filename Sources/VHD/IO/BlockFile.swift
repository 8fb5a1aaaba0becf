/// A file read and written at byte offsets with positioned I/O (pread/pwrite), whole ranges at a time.
///
/// This is one of the few types that touches raw buffers; everything above it speaks in offsets. Its
/// system calls go through `SystemFile` (Syscalls.swift).
final class BlockFile {
  let path: String
  let isWritable: Bool
  private let file: SystemFile
  /// The file's length in bytes, kept current as this object writes past the end.
  private(set) var size: UInt64
  private var isClosed = false

  init(openingAt path: String, writable: Bool) throws {
    self.path = path
    isWritable = writable
    file = try SystemFile.open(path, writable: writable)
    do {
      size = try file.length()
    } catch {
      file.close()
      throw error
    }
  }

  init(creatingAt path: String, overwrite: Bool = false) throws {
    self.path = path
    isWritable = true
    file = try SystemFile.create(path, overwrite: overwrite)
    size = 0
  }

  deinit {
    if !isClosed { file.close() }
  }

  func close() {
    guard !isClosed else { return }
    isClosed = true
    file.close()
  }

  /// Reads exactly `buffer.count` bytes at `offset`; bytes past the end of the file read as zeros.
  func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    var done = 0
    while done < buffer.count {
      let position = offset + UInt64(done)
      if position >= size { break }
      let count = try file.read(at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
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
      let count = try file.read(
        at: offset + UInt64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
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
    try file.write(buffer, at: offset)
    size = max(size, offset + UInt64(buffer.count))
  }

  /// Writes inside the file's current length; unlike `write`, safe to call from several threads at
  /// once for ranges that do not overlap (pwrite is atomic per call and nothing here changes).
  func overwrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
    precondition(isWritable && offset + UInt64(buffer.count) <= size, "overwrite outside the file")
    try file.write(buffer, at: offset)
  }

  /// Copies `count` bytes from `source` at `sourceOffset` to this file at `offset` inside the kernel
  /// (copy_file_range), which spares the copy through user memory; falls back to read and write.
  func copy(from source: BlockFile, at sourceOffset: UInt64, to offset: UInt64, count: Int, buffer: IOBuffer) throws {
    precondition(isWritable && offset + UInt64(count) <= size, "copy outside the file")
    var done = file.copy(from: source.file, at: sourceOffset, to: offset, count: count)
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
    try file.resize(to: newSize)
    size = newSize
  }

  /// Asks the kernel to start writing a range back now, without waiting: a long copy that ends in
  /// `synchronize` then overlaps its writing with its copying.
  func startWriteback(at offset: UInt64, count: Int) {
    file.startWriteback(at: offset, count: count)
  }

  /// Tells the kernel the cached pages of a range will not be read again; never loses data. Freeing
  /// them early makes removing a large file afterwards cheap.
  func dropCache(at offset: UInt64, count: Int) {
    file.dropCache(at: offset, count: count)
  }

  /// Asks the kernel to start reading a range now, so that a later read finds it cached.
  func prefetch(at offset: UInt64, count: Int) {
    file.prefetch(at: offset, count: count)
  }

  /// Frees the file space of a range, which then reads as zeros, keeping the file's length
  /// (fallocate PUNCH_HOLE | KEEP_SIZE). False where the file system or platform cannot.
  func punchHole(at offset: UInt64, count: UInt64) -> Bool {
    precondition(isWritable, "punching a hole in a read-only BlockFile")
    return count > 0 && file.punchHole(at: offset, count: count)
  }

  /// Forces written data to stable storage: merges rely on it before anything is deleted.
  func synchronize() throws {
    try file.synchronize()
  }

  /// The next offset at or after `offset` that holds data, skipping holes, or nil at the end.
  func nextData(from offset: UInt64) -> UInt64? {
    file.nextData(from: offset)
  }

  /// Bytes the file occupies on its file system (sparse files take less than their length).
  var allocatedBytes: UInt64 {
    (try? file.status().allocatedBytes) ?? size
  }

  var modificationTime: Double {
    (try? file.status().modificationTime) ?? 0
  }
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
