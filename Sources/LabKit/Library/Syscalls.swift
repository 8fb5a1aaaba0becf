import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One open file and the system calls LabKit makes on it (the library lock, manifest files), all in
/// this file, as swift-system keeps its own: each wrapper takes Swift types and throws a
/// `LabKitError` that names the file and what failed.
struct SystemFile {
  let path: String
  private let descriptor: Int32

  enum Mode {
    /// Read and write, created when missing, contents kept (the library lock).
    case readWriteCreating
    /// Write only, created when missing, emptied when present (a manifest's temporary file).
    case writeTruncating
  }

  /// Opens `path`; `what` names the file in the error ("the library lock").
  static func open(_ path: String, _ mode: Mode, what: String) throws -> SystemFile {
    let flags: Int32
    switch mode {
    case .readWriteCreating: flags = O_RDWR | O_CREAT | O_CLOEXEC
    case .writeTruncating: flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
    }
    let descriptor = Glibc.open(path, flags, 0o644)
    guard descriptor >= 0 else { throw LabKitError(.failed, "cannot open \(what) \(path): \(lastError())") }
    return SystemFile(path: path, descriptor: descriptor)
  }

  func close() {
    _ = Glibc.close(descriptor)
  }

  /// flock: takes the exclusive lock, waiting for it or not. False when another process holds it
  /// and `wait` is off; other failures throw.
  func lockExclusively(wait: Bool) throws -> Bool {
    while flock(descriptor, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
      if errno == EWOULDBLOCK { return false }
      if errno == EINTR { continue }
      throw LabKitError(.failed, "cannot lock \(path): \(lastError())")
    }
    return true
  }

  /// Releases the flock (closing the file releases it too).
  func unlock() {
    _ = flock(descriptor, LOCK_UN)
  }

  /// ftruncate to an empty file.
  func truncate() throws {
    guard ftruncate(descriptor, 0) == 0 else { throw LabKitError(.failed, "cannot empty \(path): \(lastError())") }
  }

  /// pwrite until every byte is written at `offset`.
  func write(_ data: Data, at offset: Int = 0) throws {
    try data.withUnsafeBytes { bytes in
      var done = 0
      while done < bytes.count {
        let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw LabKitError(.failed, "cannot write \(path): \(lastError())") }
        done += written
      }
    }
  }

  /// Opens a file or folder that exists, read-only, to sync it; nil when it is not there.
  static func openExisting(_ path: String) -> SystemFile? {
    let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    return descriptor >= 0 ? SystemFile(path: path, descriptor: descriptor) : nil
  }

  /// fsync: the file's data and metadata (a folder's entries) reach the disk.
  func sync(what: String) throws {
    while fsync(descriptor) != 0 {
      if errno == EINTR { continue }
      throw LabKitError(.failed, "cannot sync \(what) \(path) to the disk: \(lastError())")
    }
  }

  /// rename(2): replaces `destination` by `source` in one step (same file system).
  static func rename(_ source: String, over destination: String) throws {
    guard Glibc.rename(source, destination) == 0 else {
      throw LabKitError(.failed, "cannot replace \(destination): \(lastError())")
    }
  }

  private static func lastError() -> String { String(cString: strerror(errno)) }
  private func lastError() -> String { SystemFile.lastError() }
}
