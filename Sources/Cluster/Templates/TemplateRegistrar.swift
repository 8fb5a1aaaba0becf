import Foundation
import LabKit

/// Keeps the cluster's list of this host's templates what its library holds: an image built with
/// `vmlab image build` (by the agent's step or by hand in the library) is registered with its
/// files' SHA-256 at the agent's next look; a removed one is forgotten. Files are hashed again
/// only when a template's folder changed (names, sizes or modification times).
final class TemplateRegistrar: @unchecked Sendable {
  let host: String
  let library: String
  private var seen: [String: String] = [:]

  init(host: String, library: String) {
    self.host = host
    self.library = library
  }

  /// Registers new and changed templates and forgets removed ones; returns lines for the log.
  func scan(_ db: ClusterDatabase) async throws -> [String] {
    let templates = ImageTemplates(library: library)
    let manifests = templates.list().filter { (try? NameRules.validate($0.name, as: "image")) != nil }
    var lines: [String] = []
    var current: [String: String] = [:]
    for manifest in manifests {
      let folder = templates.folder(of: manifest.name)
      let signature = Self.signature(of: folder)
      current[manifest.name] = signature
      if seen[manifest.name] == signature { continue }
      let files = try await onThread { try TemplateFile.list(folder: folder) }
      try await db.registerTemplate(
        image: manifest.name, host: host, files: files, built: ISO8601DateFormatter().string(from: manifest.built))
      lines.append(
        "template '\(manifest.name)' registered (\(files.count) files, \(PlacementRule.bytes(files.reduce(0) { $0 + $1.size })), SHA-256 of each)"
      )
    }
    for image in try await db.unregisterTemplates(host: host, keeping: manifests.map(\.name)) {
      lines.append("template '\(image)' is no longer in this library; forgotten by the cluster")
    }
    seen = current
    return lines
  }

  /// Names, sizes and modification times of the folder's files.
  static func signature(of folder: String) -> String {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    return names.map { name -> String in
      var status = stat()
      guard stat("\(folder)/\(name)", &status) == 0 else { return name }
      return "\(name):\(status.st_size):\(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
    }.joined(separator: "/")
  }

  /// Removes the hidden folders of pulls whose process is gone (`.IMAGE-pulling-PID-…`).
  static func sweepLeftovers(library: String) {
    let templates = "\(library)/templates"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: templates)) ?? []
    where name.hasPrefix(".") && name.contains("-pulling-") {
      let fields = name.split(separator: "-")
      guard fields.count >= 3, let pid = pid_t(fields[fields.count - 2]) else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: "\(templates)/\(name)") }
    }
  }
}
