import Foundation

/// An exclusive lock on a library folder, held while a process uses it, so that two vmlab processes
/// never change the same library at once. The kernel releases it if the process dies.
final class LibraryLock {
  private var file: SystemFile?

  init(folder: String, wait: Bool) throws {
    let path = folder + "/library.lock"
    let file = try SystemFile.open(path, .readWriteCreating, what: "the library lock")
    guard try file.lockExclusively(wait: wait) else {
      let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
      file.close()
      throw LabKitError(
        .busy,
        "library busy: another vmlab process\(holder.map { " (\($0))" } ?? "") is using \(folder); try again when it ends, or pass --wait to wait for it"
      )
    }
    self.file = file
    // Who holds the lock, for the message another process shows; the lock holds without it.
    try? file.truncate()
    try? file.write(Data("pid \(ProcessInfo.processInfo.processIdentifier)\n".utf8))
  }

  /// Releases the lock now rather than when the object goes (a job thread may still hold the
  /// library for a moment after its work ends). Releasing twice does nothing.
  func release() {
    guard let file else { return }
    file.unlock()
    file.close()
    self.file = nil
  }

  deinit {
    release()
  }
}
