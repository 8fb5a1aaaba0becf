import Foundation
import LabKit
import PostgresNIO

/// The target's side of a template copy: it asks a live host that has the template to send it,
/// writes the stream into a hidden folder beside the library's templates, checks every file's
/// size and SHA-256 against what the cluster registered, and only then renames the folder into
/// place. A wrong byte, a short stream or a sender that stops leaves nothing behind.
public struct TemplatePuller {
  let db: ClusterDatabase
  /// The target's library folder and host name.
  let library: String
  let host: String
  /// How long the source may take to start sending, and to send the next chunk.
  var startSeconds: Double = 60
  var stallSeconds: Double = 30
  var progress: (Double) -> Void = { _ in }
  var log: (String) -> Void = { _ in }

  public init(db: ClusterDatabase, library: String, host: String) {
    self.db = db
    self.library = library
    self.host = host
  }

  /// Makes sure `image` is in this library, copying it from another host when it is not; returns
  /// what was done.
  public func pull(image: String) async throws -> String {
    do {
      try NameRules.validate(image, as: "image")
    } catch let error as LabKitError {
      throw ClusterError(.usage, error.message)
    }
    let templates = "\(library)/templates"
    let final = "\(templates)/\(image)"
    if FileManager.default.fileExists(atPath: "\(final)/\(ImageManifest.fileName)") {
      return "image '\(image)' is already in this library"
    }
    let source = try await chooseSource(image)
    let files = source.files
    for file in files { _ = try file.checkedName() }
    let total = files.reduce(Int64(0)) { $0 + $1.size }
    log("pulling image '\(image)' from host \(source.host) (\(files.count) files, \(PlacementRule.bytes(total)))")
    let id = try await db.requestTransfer(image: image, source: source.host, target: host, files: files)
    try FileManager.default.createDirectory(atPath: templates, withIntermediateDirectories: true)
    let staging = "\(templates)/.\(image)-pulling-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
    var kept = false
    defer { if !kept { try? FileManager.default.removeItem(atPath: staging) } }
    do {
      let received = try await receive(id, files: files, into: staging, total: total, from: source.host)
      try verify(files, in: staging, image: image, from: source.host)
      if FileManager.default.fileExists(atPath: final) {
        try? await db.setTransfer(id, state: "done", from: ["sent"])
        return "image '\(image)' appeared in this library while it was pulled; the copy was dropped"
      }
      try FileManager.default.moveItem(atPath: staging, toPath: final)
      kept = true
      try await db.setTransfer(id, state: "done", from: ["sent"])
      try await db.registerTemplate(image: image, host: host, files: files, built: source.built)
      return
        "image '\(image)' copied from host \(source.host): \(files.count) files, \(received) bytes, SHA-256 verified"
    } catch {
      try? await db.failTransfer(id, error: "\(error)")
      throw error
    }
  }

  /// A live host, other than this one, that registered the template.
  private func chooseSource(_ image: String) async throws -> RegisteredTemplate {
    let holders = try await db.templates().filter { $0.image == image && $0.host != host }
    let states = Dictionary(try await db.hosts().map { ($0.name, $0.state) }, uniquingKeysWith: { a, _ in a })
    if let live = holders.first(where: { states[$0.host] == .alive }) { return live }
    if holders.isEmpty {
      throw ClusterError(
        .failed,
        "image '\(image)' is on no host of the cluster; build it with `vmlab --cluster URL image build \(image) --host-name HOST`, or `vmlab image build \(image)` in a host's library"
      )
    }
    let where_ = holders.map { "\($0.host) (\(states[$0.host]?.rawValue ?? "unknown"))" }.joined(separator: ", ")
    throw ClusterError(
      .failed,
      "image '\(image)' is only on host \(where_), which is not live; start that host's agent, or build the image on a live host"
    )
  }

  /// Takes the chunks in order and appends each to its file; returns the bytes received.
  private func receive(_ id: Int64, files: [TemplateFile], into folder: String, total: Int64, from source: String)
    async throws -> Int64
  {
    var handles: [FileHandle] = []
    for file in files {
      let path = "\(folder)/\(file.name)"
      guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
      else { throw ClusterError(.failed, "cannot write \(path)") }
      handles.append(handle)
    }
    defer { for handle in handles { try? handle.close() } }
    var seq = 0
    var received: Int64 = 0
    var lastReport = -1
    var started = false
    var sawSent = false
    var deadline = Date().addingTimeInterval(startSeconds)
    while true {
      if let chunk = try await db.takeChunk(transfer: id, seq: seq) {
        guard chunk.file >= 0 && chunk.file < files.count else {
          throw ClusterError(.failed, "host \(source) sent a chunk for file \(chunk.file) of \(files.count)")
        }
        try handles[chunk.file].write(contentsOf: chunk.data.readableBytesView)
        received += Int64(chunk.data.readableBytes)
        guard received <= total else {
          throw ClusterError(.failed, "host \(source) sent more than the template's \(total) bytes")
        }
        seq += 1
        started = true
        deadline = Date().addingTimeInterval(stallSeconds)
        let percent = Int(Double(received) * 100 / Double(max(1, total)))
        if percent / 10 != lastReport / 10 {
          lastReport = percent
          progress(Double(received) / Double(max(1, total)))
          log("pulling: \(percent)% (\(PlacementRule.bytes(received)) of \(PlacementRule.bytes(total)))")
        }
        continue
      }
      guard let transfer = try await db.transfer(id) else {
        throw ClusterError(.failed, "the transfer \(id) left the cluster database")
      }
      switch transfer.state {
      case "failed":
        throw ClusterError(.failed, "the copy from host \(source) failed: \(transfer.error ?? "no reason given")")
      case "sent":
        // The sender adds its last chunk before it says `sent`: one more look, then the end.
        if try await db.waitingChunks(transfer: id) == 0 { return received }
        guard !sawSent else {
          throw ClusterError(.failed, "the stream from host \(source) has no chunk \(seq) (a gap); nothing was kept")
        }
        sawSent = true
        continue
      default:
        break
      }
      guard Date() < deadline else {
        throw ClusterError(
          .failed,
          started
            ? "the stream from host \(source) stopped after \(received) of \(total) bytes (no chunk for \(String(format: "%g", stallSeconds)) s); nothing was kept"
            : "host \(source) did not start sending within \(String(format: "%g", startSeconds)) s (is its agent running?); nothing was kept"
        )
      }
      try await Task.sleep(nanoseconds: 10_000_000)
    }
  }

  /// Every file the size and SHA-256 the cluster registered.
  private func verify(_ files: [TemplateFile], in folder: String, image: String, from source: String) throws {
    for file in files {
      let path = "\(folder)/\(file.name)"
      let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1
      guard size == file.size else {
        throw ClusterError(
          .failed,
          "the copy of image '\(image)' from host \(source) is short: \(file.name) has \(size) bytes, the cluster registered \(file.size) (a truncated stream); nothing was kept"
        )
      }
      let sum = try TemplateFile.sha256(of: path)
      guard sum == file.sha256 else {
        throw ClusterError(
          .failed,
          "the copy of image '\(image)' from host \(source) does not match its checksum: \(file.name) has SHA-256 \(sum), the cluster registered \(file.sha256); nothing was kept"
        )
      }
    }
  }
}
