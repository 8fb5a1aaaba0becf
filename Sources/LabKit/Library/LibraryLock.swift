import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive lock on a library folder, held while a process uses it, so that two vmlab processes
/// never change the same library at once. The kernel releases it if the process dies.
final class LibraryLock {
  private let folder: String
  private var descriptor: Int32 = -1

  /// Takes the lock; with `wait`, waits for a process that holds it, after telling `waiting` who.
  init(folder: String, wait: Bool, waiting: (String) -> Void = { _ in }) throws {
    self.folder = folder
    if try acquire(wait: false) { return }
    guard wait else { throw busy() }
    waiting(holder)
    _ = try acquire(wait: true)
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
    LabKitError(.busy, "library busy: \(holder); try again when it ends, or pass --wait to wait for it")
  }

  /// Who holds the library, as its note says ("another vmlab process (pid N) is using DIR").
  var holder: String {
    let note = (try? String(contentsOfFile: folder + "/library.lock", encoding: .utf8))?
      .trimmingCharacters(in: .whitespacesAndNewlines)
    return "another vmlab process\(note.flatMap { $0.isEmpty ? nil : " (\($0))" } ?? "") is using \(folder)"
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
