import Foundation

/// The source's side of a template copy: it streams the files of one template folder into the
/// cluster database in chunks, at most `window` of them waiting for the puller at any moment, so
/// the database never holds more than `window × chunkSize` bytes of one transfer.
struct TemplateSender {
  let db: ClusterDatabase
  /// The source's library folder.
  let library: String
  var chunkSize = 1 << 20
  var window = 16
  /// How long the puller may take no chunk before the copy is given up.
  var stallSeconds: Double = 60

  /// Sends `transfer`; a failure is recorded on the transfer (the puller reads it) and thrown.
  func send(_ transfer: TemplateTransfer) async throws -> Int64 {
    do {
      let folder = "\(library)/templates/\(transfer.image)"
      var seq = 0
      var sent: Int64 = 0
      for (index, file) in transfer.files.enumerated() {
        let path = "\(folder)/\(try file.checkedName())"
        guard let handle = FileHandle(forReadingAtPath: path) else {
          throw ClusterError(.failed, "template '\(transfer.image)' has no file \(file.name) in \(folder) any more")
        }
        defer { try? handle.close() }
        while let data = try handle.read(upToCount: chunkSize), !data.isEmpty {
          try await waitForRoom(transfer)
          try await db.putChunk(transfer: transfer.id, seq: seq, file: index, data: data)
          seq += 1
          sent += Int64(data.count)
        }
      }
      guard try await db.setTransfer(transfer.id, state: "sent", from: ["sending"]) else {
        throw ClusterError(.failed, "the puller gave the copy up: \(try await db.transfer(transfer.id)?.error ?? "")")
      }
      return sent
    } catch {
      try? await db.failTransfer(transfer.id, error: "host \(transfer.source) could not send it: \(error)")
      throw error
    }
  }

  /// Returns once fewer than `window` chunks wait; throws when the puller gave up or stalled.
  private func waitForRoom(_ transfer: TemplateTransfer) async throws {
    let deadline = Date().addingTimeInterval(stallSeconds)
    while try await db.waitingChunks(transfer: transfer.id) >= window {
      if let now = try await db.transfer(transfer.id), now.state == "failed" {
        throw ClusterError(.failed, "host \(transfer.target) gave the copy up: \(now.error ?? "")")
      }
      guard Date() < deadline else {
        throw ClusterError(.failed, "host \(transfer.target) took no chunk for \(Int(stallSeconds)) s")
      }
      try await Task.sleep(nanoseconds: 10_000_000)
    }
  }
}
