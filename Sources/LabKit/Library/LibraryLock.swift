import Foundation

/// An exclusive lock on a library folder, held while a process uses it, so that two vmlab processes
/// never change the same library at once. The kernel releases it if the process dies.
final class LibraryLock {
  private let folder: String
  private var file: SystemFile?

  /// Takes the lock; with `wait`, waits for a process that holds it, after telling `waiting` who.
  init(folder: String, wait: Bool, waiting: (String) -> Void = { _ in }) throws {
    self.folder = folder
    if try acquire(wait: false) { return }
    guard wait else { throw busy() }
    waiting(holder)
    _ = try acquire(wait: true)
  }

  var isHeld: Bool { file != nil }

  /// Takes the lock (again, after `release()`); false when another process holds it and `wait` is
  /// false.
  func acquire(wait: Bool) throws -> Bool {
    guard file == nil else { return true }
    let file = try SystemFile.open(folder + "/library.lock", .readWriteCreating, what: "the library lock")
    guard try file.lockExclusively(wait: wait) else {
      file.close()
      return false
    }
    self.file = file
    // Who holds the lock, for the message another process shows; the lock holds without it.
    try? file.truncate()
    try? file.write(Data("pid \(ProcessInfo.processInfo.processIdentifier)\n".utf8))
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
    guard let file else { return }
    file.unlock()
    file.close()
    self.file = nil
  }

  deinit {
    release()
  }
}
