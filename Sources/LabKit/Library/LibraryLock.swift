import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive lock on a library folder, held while a process uses it, so that two vmlab processes
/// never change the same library at once. The kernel releases it if the process dies.
final class LibraryLock {
  private var descriptor: Int32

  init(folder: String, wait: Bool) throws {
    let path = folder + "/library.lock"
    descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw LabKitError(.failed, "cannot open the library lock \(path): \(String(cString: strerror(errno)))")
    }
    if flock(descriptor, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
      let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
      close(descriptor)
      throw LabKitError(
        .busy,
        "library busy: another vmlab process\(holder.map { " (\($0))" } ?? "") is using \(folder); try again when it ends, or pass --wait to wait for it"
      )
    }
    let note = "pid \(getpid())\n"
    ftruncate(descriptor, 0)
    _ = note.withCString { pwrite(descriptor, $0, strlen($0), 0) }
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
