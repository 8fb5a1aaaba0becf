import Foundation
import LabKit

/// Builds an image into a library folder (the executable knows how: QEMUHost's builder), with
/// lines of progress.
public typealias ImageBuilder =
  @Sendable (_ image: String, _ library: String, _ log: @escaping (String) -> Void)
  throws -> Void

/// What a step asks of the agent's templates, from the step's own thread: make sure an image is
/// in the library (pulling it from another host), or build one.
struct AgentTemplates: Sendable {
  let url: ClusterURL
  let host: String
  let library: String
  let builder: ImageBuilder?
  let log: @Sendable (String) -> Void
  /// Asks the template service to look again (a new template to register).
  let changed: @Sendable () -> Void

  /// Pulls `image` unless the library has it; returns what was done.
  func ensure(image: String, progress: @escaping (Double) -> Void) throws -> String {
    let (url, library, host, log) = (self.url, self.library, self.host, self.log)
    // Called back on the pull's task while the step's thread waits in runBlocking.
    nonisolated(unsafe) let progress = progress
    return try runBlocking {
      let db = try await ClusterDatabase.connect(url)
      do {
        var puller = TemplatePuller(db: db, library: library, host: host)
        puller.progress = progress
        puller.log = log
        let done = try await puller.pull(image: image)
        await db.close()
        return done
      } catch {
        await db.close()
        throw error
      }
    }
  }

  /// Builds `image` into the library and registers it at once.
  func build(image: String) throws -> String {
    guard let builder else {
      throw ClusterError(.failed, "this agent cannot build images")
    }
    try builder(image, library, log)
    let folder = ImageTemplates(library: library).folder(of: image)
    let manifest = try ImageTemplates(library: library).manifest(of: image)
    let files = try TemplateFile.list(folder: folder)
    let (url, host) = (self.url, self.host)
    try runBlocking {
      let db = try await ClusterDatabase.connect(url)
      defer { Task { await db.close() } }
      try await db.registerTemplate(
        image: image, host: host, files: files, built: ISO8601DateFormatter().string(from: manifest.built))
    }
    changed()
    return
      "built image '\(image)' (kernel \(manifest.kernelVersion)); registered with \(files.count) files, \(PlacementRule.bytes(files.reduce(0) { $0 + $1.size }))"
  }
}
