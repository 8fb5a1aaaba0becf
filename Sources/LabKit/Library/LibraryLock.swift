import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive lock on a library folder, held while a process uses it, so that two vmlab processes
/// never change the same library at once. The kernel releases it if the process dies.
final class LibraryLock {
  private let folder: String
  private var descriptor: Int32 = -1

  init(folder: String, wait: Bool) throws {
    self.folder = folder
    guard try acquire(wait: wait) else { throw busy() }
  }

  var isHeld: Bool { descriptor >= 0 }

  /// Takes the lock (again, after `release()`); false when another process holds it and `wait` is
  /// false.
  func acquire(wait: Bool) throws -> Bool {
    guard descriptor < 0 else { return true }
    let path = folder + "/library.lock"
    descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw LabKitError(.failed, "cannot open the library lock \(path): \(String(cString: strerror(errno)))")
    }
    if flock(descriptor, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
      close(descriptor)
      descriptor = -1
      return false
    }
    let note = "pid \(getpid())\n"
    ftruncate(descriptor, 0)
    _ = note.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    return true
  }

  /// The error for a library another process holds, naming it when its note says who.
  func busy() -> LabKitError {
    let note = (try? String(contentsOfFile: folder + "/library.lock", encoding: .utf8))?
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let holder = note.flatMap { $0.isEmpty ? nil : " (\($0))" } ?? ""
    return LabKitError(
      .busy,
      "library busy: another vmlab process\(holder) is using \(folder); try again when it ends, or pass --wait to wait for it"
    )
  }

  /// Releases the lock now rather than when the object goes (a job thread may still hold the
  /// library for a moment after its work ends). Releasing twice does nothing.
  func release() {
    guard descriptor >= 0 else { return }
    flock(descriptor, LOCK_UN)
    close(descriptor)
    descriptor = -1
  }

  deinit {
    release()
  }
}
