import Foundation
import PostgresNIO

/// An image template a host's library holds, as registered in the cluster.
public struct RegisteredTemplate: Sendable, Codable, Equatable {
  public var image: String
  public var host: String
  public var files: [TemplateFile]
  public var bytes: Int64
  /// When it was built (the image's manifest), so copies of one build are told from another.
  public var built: String
}

/// A copy of a template between two hosts, as the sender and the puller see it.
public struct TemplateTransfer: Sendable, Equatable {
  public var id: Int64
  public var image: String
  public var source: String
  public var target: String
  public var files: [TemplateFile]
  public var state: String
  public var error: String?
}

extension ClusterDatabase {
  /// Records that `host`'s library holds the template `image` with these files.
  public func registerTemplate(image: String, host: String, files: [TemplateFile], built: String) async throws {
    let json = String(decoding: try JSONEncoder().encode(files), as: UTF8.self)
    let bytes = files.reduce(Int64(0)) { $0 + $1.size }
    try await rows(
      """
      INSERT INTO template (image, host, files, bytes, built) VALUES (\(image), \(host), \(json)::jsonb, \(bytes), \(built))
      ON CONFLICT (image, host) DO UPDATE SET files = EXCLUDED.files, bytes = EXCLUDED.bytes, built = EXCLUDED.built,
        registered_at = now()
      """)
  }

  /// Forgets the templates of `host` other than `keeping` (they left its library).
  public func unregisterTemplates(host: String, keeping: [String]) async throws -> [String] {
    try await rows(
      "DELETE FROM template WHERE host = \(host) AND NOT (image = ANY(\(keeping))) RETURNING image"
    ).map { try $0.decode(String.self) }
  }

  /// Every registered template, by image and host.
  public func templates() async throws -> [RegisteredTemplate] {
    try await rows("SELECT image, host, files::text, bytes, built FROM template ORDER BY image, host").map { row in
      let (image, host, files, bytes, built) = try row.decode((String, String, String, Int64, String).self)
      return RegisteredTemplate(
        image: try validatedName(image, as: "image"), host: try validatedName(host, as: "host"),
        files: try JSONDecoder().decode([TemplateFile].self, from: Data(files.utf8)), bytes: bytes, built: built)
    }
  }

  /// The largest registered size of each image (what a new host's copy will take).
  func templateSizes() async throws -> [String: Int64] {
    var sizes: [String: Int64] = [:]
    for row in try await rows("SELECT image, max(bytes) FROM template GROUP BY image") {
      let (image, bytes) = try row.decode((String, Int64).self)
      sizes[image] = bytes
    }
    return sizes
  }

  /// Asks `source` to send its template `image` to `target`; returns the transfer's id.
  func requestTransfer(image: String, source: String, target: String, files: [TemplateFile]) async throws -> Int64 {
    let json = String(decoding: try JSONEncoder().encode(files), as: UTF8.self)
    return try await rows(
      """
      INSERT INTO template_transfer (image, source, target, files) VALUES (\(image), \(source), \(target), \(json)::jsonb)
      RETURNING id
      """
    )[0].decode(Int64.self)
  }

  /// Takes the transfers asked of `source` (each is sent once, by whoever claims it first).
  func claimTransfers(source: String) async throws -> [TemplateTransfer] {
    try await rows(
      """
      UPDATE template_transfer SET state = 'sending', updated_at = now()
      WHERE id IN (SELECT id FROM template_transfer WHERE source = \(source) AND state = 'requested'
        ORDER BY id FOR UPDATE SKIP LOCKED)
      RETURNING id, image, source, target, files::text, state, error
      """
    ).map(Self.transfer)
  }

  func transfer(_ id: Int64) async throws -> TemplateTransfer? {
    try await rows(
      "SELECT id, image, source, target, files::text, state, error FROM template_transfer WHERE id = \(id)"
    ).first.map(Self.transfer)
  }

  private static func transfer(_ row: PostgresRow) throws -> TemplateTransfer {
    let c = try row.decode((Int64, String, String, String, String, String, String?).self)
    return TemplateTransfer(
      id: c.0, image: try validatedName(c.1, as: "image"), source: c.2, target: c.3,
      files: try JSONDecoder().decode([TemplateFile].self, from: Data(c.4.utf8)), state: c.5, error: c.6)
  }

  /// How many chunks of the transfer wait for the puller.
  func waitingChunks(transfer: Int64) async throws -> Int {
    try await rows("SELECT count(*) FROM template_chunk WHERE transfer = \(transfer)")[0].decode(Int.self)
  }

  func putChunk(transfer: Int64, seq: Int, file: Int, data: Data) async throws {
    try await rows(
      "INSERT INTO template_chunk (transfer, seq, file, data) VALUES (\(transfer), \(seq), \(file), \(data))")
  }

  /// Takes chunk `seq` away (the puller's side), or nil when it is not there yet. A chunk taken
  /// marks the transfer as moving (`updated_at`), which is what tells one in flight from one
  /// abandoned (`pruneTransfers`).
  func takeChunk(transfer: Int64, seq: Int) async throws -> (file: Int, data: Data)? {
    guard
      let row = try await rows(
        """
        WITH taken AS (DELETE FROM template_chunk WHERE transfer = \(transfer) AND seq = \(seq) RETURNING file, data),
          moved AS (UPDATE template_transfer SET updated_at = now()
            WHERE id = \(transfer) AND EXISTS (SELECT 1 FROM taken))
        SELECT file, data FROM taken
        """
      ).first
    else { return nil }
    let (file, data) = try row.decode((Int, ByteBuffer).self)
    return (file, Data(data.readableBytesView))
  }

  /// Moves a transfer on (`sent`, `done`); only from the state it is expected in. A transfer
  /// done keeps no chunk (a copy that appeared meanwhile is done without reading them all).
  @discardableResult
  func setTransfer(_ id: Int64, state: String, from: [String]) async throws -> Bool {
    let moved =
      !(try await rows(
        """
        UPDATE template_transfer SET state = \(state), updated_at = now()
        WHERE id = \(id) AND state = ANY(\(from)) RETURNING id
        """
      ).isEmpty)
    if moved && TransferPruning.ended.contains(state) {
      try await rows("DELETE FROM template_chunk WHERE transfer = \(id)")
    }
    return moved
  }

  /// Ends a transfer as failed, with why, and drops its chunks.
  func failTransfer(_ id: Int64, error: String) async throws {
    try await rows(
      """
      UPDATE template_transfer SET state = 'failed', error = \(error), updated_at = now()
      WHERE id = \(id) AND state <> 'done'
      """)
    try await rows("DELETE FROM template_chunk WHERE transfer = \(id)")
  }

  /// Applies `rule` to the transfers of every host (see `TransferPruning`): gives up the
  /// unfinished ones that stopped moving, drops every chunk of a transfer that ended, and
  /// deletes ended rows older than the rule keeps, except each target's latest copy of an image.
  /// Each statement is idempotent, so agents pruning at once do no harm.
  func pruneTransfers(_ rule: TransferPruning) async throws -> TransferPruning.Outcome {
    let unfinished = TransferPruning.unfinished
    let ended = TransferPruning.ended
    let reason =
      "abandoned: no chunk moved for \(TransferPruning.duration(rule.abandonedAfter)) (its puller or sender stopped); its chunks were dropped"
    let abandoned = try await rows(
      """
      UPDATE template_transfer SET state = 'failed', error = \(reason), updated_at = now()
      WHERE state = ANY(\(unfinished)) AND updated_at < now() - make_interval(secs => \(rule.abandonedAfter))
      RETURNING id
      """
    ).map { try $0.decode(Int64.self) }
    let chunks = try await rows(
      """
      DELETE FROM template_chunk c WHERE NOT EXISTS (
        SELECT 1 FROM template_transfer t WHERE t.id = c.transfer AND t.state = ANY(\(unfinished)))
      RETURNING transfer
      """
    ).count
    let deleted = try await rows(
      """
      DELETE FROM template_transfer t
      WHERE t.state = ANY(\(ended)) AND t.updated_at < now() - make_interval(secs => \(rule.keepEndedFor))
        AND EXISTS (SELECT 1 FROM template_transfer n WHERE n.image = t.image AND n.target = t.target AND n.id > t.id)
      RETURNING id
      """
    ).count
    return TransferPruning.Outcome(abandoned: abandoned.sorted(), deletedRows: deleted, deletedChunks: chunks)
  }

  /// Every transfer, oldest first (to see what pruning kept).
  func transfers() async throws -> [TemplateTransfer] {
    try await rows(
      "SELECT id, image, source, target, files::text, state, error FROM template_transfer ORDER BY id"
    ).map(Self.transfer)
  }
}
