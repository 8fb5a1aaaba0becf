import Foundation
import TestSupport
import XCTest

@testable import Cluster

/// `template_transfer` rows and their chunks do not pile up (`TransferPruning`): a transfer that
/// ends drops its chunks, one that stopped moving is given up, old ended rows go except each
/// host's latest copy of an image, and a transfer in flight is never touched.
final class TemplatePruningTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!
  var folder: TemporaryFolder!
  let files = [TemplateFile(name: "root.vhd", size: 3 << 20, sha256: String(repeating: "0", count: 64))]

  override func setUp() async throws {
    cluster = try TestCluster()
    folder = TemporaryFolder()
    db = try await cluster.connect()
    try await db.migrate()
    for host in ["h1", "h2", "h3"] {
      try await db.register(
        host: host, agent: "agent-\(host)", address: host, library: folder.file("library-\(host)"),
        capacity: HostCapacity(memoryTotal: 1 << 30, memoryFree: 1 << 30, diskTotal: 1 << 40, diskFree: 1 << 40),
        capabilities: ["simulated"], heartbeatSeconds: 600)
    }
  }

  override func tearDown() async throws {
    await db?.close()
    cluster?.remove()
  }

  /// A transfer of `image` from h1 to `target` in `state`, last moved `age` seconds ago, holding
  /// `chunks` chunks; returns its id.
  private func transfer(
    _ state: String, to target: String = "h2", image: String = "tiny", age: Double, chunks: Int = 0
  ) async throws -> Int64 {
    let id = try await db.requestTransfer(image: image, source: "h1", target: target, files: files)
    for seq in 0..<chunks {
      try await db.putChunk(transfer: id, seq: seq, file: 0, data: Data(repeating: UInt8(seq), count: 1 << 20))
    }
    try await db.rows(
      """
      UPDATE template_transfer SET state = \(state),
        updated_at = now() - make_interval(secs => \(age)), created_at = now() - make_interval(secs => \(age + 60))
      WHERE id = \(id)
      """)
    return id
  }

  private func chunks(_ id: Int64) async throws -> Int { try await db.waitingChunks(transfer: id) }

  private func states() async throws -> [Int64: String] {
    Dictionary(uniqueKeysWithValues: try await db.transfers().map { ($0.id, $0.state) })
  }

  private let day: Double = 86400

  func testAnAbandonedTransferIsGivenUpAndOneInFlightIsNeverTouched() async throws {
    let abandoned = try await transfer("sending", age: 2 * 3600, chunks: 3)
    let neverStarted = try await transfer("requested", to: "h3", age: 3 * 3600)
    // Moving now: a chunk was taken seconds ago, however long ago the transfer began.
    let inFlight = try await transfer("sending", image: "big", age: 5, chunks: 2)
    try await db.rows("UPDATE template_transfer SET created_at = now() - interval '3 days' WHERE id = \(inFlight)")
    let sentMomentsAgo = try await transfer("sent", to: "h3", image: "big", age: 1, chunks: 1)

    let outcome = try await db.pruneTransfers(TransferPruning())
    XCTAssertEqual(outcome.abandoned, [abandoned, neverStarted])
    XCTAssertEqual(outcome.deletedChunks, 3)
    XCTAssertEqual(outcome.deletedRows, 0, "an abandoned transfer is the latest of its host: its row stays")
    let states = try await states()
    XCTAssertEqual(states[abandoned], "failed")
    XCTAssertEqual(states[neverStarted], "failed")
    XCTAssertEqual(states[inFlight], "sending")
    XCTAssertEqual(states[sentMomentsAgo], "sent")
    let abandonedChunks = try await chunks(abandoned)
    let inFlightChunks = try await chunks(inFlight)
    let sentChunks = try await chunks(sentMomentsAgo)
    XCTAssertEqual([abandonedChunks, inFlightChunks, sentChunks], [0, 2, 1])
    let error = try await db.transfer(abandoned)?.error ?? ""
    XCTAssertEqual(
      error, "abandoned: no chunk moved for 1 h (its puller or sender stopped); its chunks were dropped")
    XCTAssertEqual(
      outcome.line(TransferPruning()),
      "template transfers pruned: gave up 2 abandoned (transfer \(abandoned), \(neverStarted): no chunk moved for 1 h); dropped 3 chunks of ended transfers"
    )
  }

  func testTakingAChunkMarksTheTransferAsMoving() async throws {
    let id = try await transfer("sending", age: 2 * 3600, chunks: 2)
    let taken = try await db.takeChunk(transfer: id, seq: 0)
    XCTAssertEqual(taken?.data.count, 1 << 20)
    let outcome = try await db.pruneTransfers(TransferPruning())
    XCTAssertEqual(outcome.abandoned, [], "a transfer whose chunk was just taken is in flight")
    let state = try await db.transfer(id)?.state
    let left = try await chunks(id)
    XCTAssertEqual(state, "sending")
    XCTAssertEqual(left, 1)
    // No chunk there: nothing taken, and nothing marked.
    let missing = try await db.takeChunk(transfer: id, seq: 7)
    XCTAssertNil(missing)
  }

  func testOldEndedRowsGoButEachHostsLatestCopyOfAnImageStays() async throws {
    let oldFailure = try await transfer("failed", age: 10 * day)
    let oldCopy = try await transfer("done", age: 9 * day)
    let latestToH2 = try await transfer("done", age: 8 * day)
    let olderToH3 = try await transfer("failed", to: "h3", age: 10 * day)
    let otherImage = try await transfer("done", image: "big", age: 30 * day)
    // Ended recently, but with chunks a killed puller left behind.
    let recentWithChunks = try await transfer("failed", to: "h3", image: "big", age: day, chunks: 2)
    let stillYoung = try await transfer("failed", to: "h3", age: 2 * day)

    let outcome = try await db.pruneTransfers(TransferPruning())
    XCTAssertEqual(outcome.abandoned, [])
    XCTAssertEqual(outcome.deletedChunks, 2)
    // olderToH3 is older than 7 days but no longer h3's latest 'tiny' (stillYoung is).
    XCTAssertEqual(outcome.deletedRows, 3)
    let kept = try await db.transfers().map(\.id)
    XCTAssertEqual(kept, [latestToH2, otherImage, recentWithChunks, stillYoung])
    XCTAssertFalse(kept.contains(oldFailure) || kept.contains(oldCopy) || kept.contains(olderToH3))
    let left = try await chunks(recentWithChunks)
    XCTAssertEqual(left, 0)
    // A second round finds nothing more.
    let again = try await db.pruneTransfers(TransferPruning())
    XCTAssertTrue(again.isEmpty, "\(again)")
  }

  func testATransferThatEndsDropsItsChunksAtOnce() async throws {
    let done = try await transfer("sent", age: 1, chunks: 2)
    let moved = try await db.setTransfer(done, state: "done", from: ["sent"])
    XCTAssertTrue(moved)
    let failed = try await transfer("sending", to: "h3", age: 1, chunks: 2)
    try await db.failTransfer(failed, error: "test")
    let doneChunks = try await chunks(done)
    let failedChunks = try await chunks(failed)
    XCTAssertEqual([doneChunks, failedChunks], [0, 0])
    // A move refused (not from the expected state) drops nothing.
    let sending = try await transfer("sending", image: "big", age: 1, chunks: 1)
    let refused = try await db.setTransfer(sending, state: "done", from: ["sent"])
    XCTAssertFalse(refused)
    let sendingChunks = try await chunks(sending)
    XCTAssertEqual(sendingChunks, 1)
  }

  func testTheAgentsTemplateServicePrunesAtStart() async throws {
    let abandoned = try await transfer("sending", age: 2 * 3600, chunks: 1)
    let old = try await transfer("done", age: 10 * day)
    _ = try await transfer("done", age: 9 * day)
    let lines = LogLines()
    let service = TemplateService(
      url: cluster.url, host: "h1", library: folder.file("library-h1"), pollSeconds: 0.2,
      log: { lines.add($0) })
    let running = Task { await service.run() }
    defer { running.cancel() }
    let deadline = Date().addingTimeInterval(20)
    while try await db.transfer(abandoned)?.state != "failed" {
      guard Date() < deadline else {
        XCTFail("the service did not prune within 20 s: \(lines.all)")
        break
      }
      try await Task.sleep(nanoseconds: 50_000_000)
    }
    running.cancel()
    await running.value
    let gone = try await db.transfer(old)
    XCTAssertNil(gone)
    XCTAssertTrue(
      lines.all.contains { $0.hasPrefix("template transfers pruned: gave up 1 abandoned (transfer \(abandoned):") },
      "\(lines.all)")
  }

  func testDurationsReadAsPeopleSayThem() {
    XCTAssertEqual(TransferPruning.duration(45), "45 s")
    XCTAssertEqual(TransferPruning.duration(600), "10 min")
    XCTAssertEqual(TransferPruning.duration(3600), "1 h")
    XCTAssertEqual(TransferPruning.duration(5400), "1.5 h")
    XCTAssertEqual(TransferPruning.duration(86400), "1 day")
    XCTAssertEqual(TransferPruning.duration(7 * 86400), "7 days")
  }
}

/// Lines an agent's part logged.
final class LogLines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func add(_ line: String) { lock.withLock { lines.append(line) } }
  var all: [String] { lock.withLock { lines } }
}
