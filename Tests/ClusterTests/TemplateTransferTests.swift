import Foundation
import TestSupport
import XCTest

@testable import Cluster

/// Templates copied between two hosts' libraries through the cluster database: byte for byte,
/// and nothing kept when a byte is wrong, the stream is short or stops, or no live host has it.
final class TemplateTransferTests: XCTestCase {
  var cluster: TestCluster!
  var db: ClusterDatabase!
  var folder: TemporaryFolder!
  var sender: Task<Void, Never>?

  override func setUp() async throws {
    cluster = try TestCluster()
    folder = TemporaryFolder()
    db = try await cluster.connect()
    try await db.migrate()
    for host in ["h1", "h2"] { try await register(host) }
  }

  override func tearDown() async throws {
    sender?.cancel()
    await sender?.value
    await db?.close()
    cluster?.remove()
  }

  private func register(_ host: String, heartbeat: Double = 600) async throws {
    try await db.register(
      host: host, agent: "agent-\(host)", address: host, library: library(host),
      capacity: HostCapacity(memoryTotal: 1 << 30, memoryFree: 1 << 30, diskTotal: 1 << 40, diskFree: 1 << 40),
      capabilities: ["simulated"], heartbeatSeconds: heartbeat)
  }

  private func library(_ host: String) -> String { folder.file("library-\(host)") }

  /// h1's library gets the stand-in image, registered as its agent would.
  private func registerOnH1() async throws -> String {
    let made = try StandInImage.make(in: library("h1"))
    let lines = try await TemplateRegistrar(host: "h1", library: library("h1")).scan(db)
    XCTAssertEqual(lines.count, 1)
    XCTAssertTrue(lines[0].hasPrefix("template 'tiny' registered (5 files"), "\(lines)")
    return made
  }

  /// h1's side, as its agent runs it: every transfer asked of it is sent.
  private func startSender(window: Int = 16) {
    let url = cluster.url
    let source = library("h1")
    sender = Task {
      guard let db = try? await ClusterDatabase.connect(url) else { return }
      while !Task.isCancelled {
        for transfer in (try? await db.claimTransfers(source: "h1")) ?? [] {
          var sender = TemplateSender(db: db, library: source)
          sender.chunkSize = 256 << 10
          sender.window = window
          _ = try? await sender.send(transfer)
        }
        try? await Task.sleep(nanoseconds: 20_000_000)
      }
      await db.close()
    }
  }

  private func puller(stall: Double = 10) -> TemplatePuller {
    var puller = TemplatePuller(db: db, library: library("h2"), host: "h2")
    puller.startSeconds = stall
    puller.stallSeconds = stall
    return puller
  }

  /// Nothing of the image in h2's library: no template, no hidden pull folder.
  private func assertNothingKept(file: StaticString = #filePath, line: UInt = #line) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: library("h2") + "/templates")) ?? []
    XCTAssertEqual(names, [], "left in h2's templates: \(names)", file: file, line: line)
  }

  func testATemplateRegisteredOnOneHostArrivesOnTheOtherByteForByte() async throws {
    let source = try await registerOnH1()
    startSender(window: 2)
    var puller = puller()
    let fractions = FractionLog()
    puller.progress = { fractions.add($0) }
    let said = try await puller.pull(image: "tiny")
    XCTAssertTrue(said.hasPrefix("image 'tiny' copied from host h1: 5 files, 4000751 bytes, SHA-256 verified"), said)
    let copy = try StandInImage.contents(of: library("h2") + "/templates/tiny")
    XCTAssertEqual(copy, try StandInImage.contents(of: source))
    XCTAssertEqual(copy["empty"], Data())
    XCTAssertEqual(fractions.values.last, 1)
    XCTAssertGreaterThan(fractions.values.count, 3, "no progress while pulling")
    let holders = try await db.templates().filter { $0.image == "tiny" }.map(\.host)
    XCTAssertEqual(holders, ["h1", "h2"])
    let chunks = try await db.rows("SELECT count(*) FROM template_chunk")[0].decode(Int.self)
    XCTAssertEqual(chunks, 0, "chunks left in the database")
    // A second pull finds it there.
    let again = try await puller.pull(image: "tiny")
    XCTAssertEqual(again, "image 'tiny' is already in this library")
  }

  func testACorruptedByteIsRefusedAndNothingIsKept() async throws {
    let source = try await registerOnH1()
    // Rot on the source after registration: one byte of the initrd.
    let path = source + "/initrd.img"
    var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    bytes[1_000_000] ^= 0x01
    try bytes.write(to: URL(fileURLWithPath: path))
    startSender()
    do {
      _ = try await puller().pull(image: "tiny")
      XCTFail("a corrupted copy was kept")
    } catch {
      XCTAssertTrue(
        "\(error)".contains(
          "the copy of image 'tiny' from host h1 does not match its checksum: initrd.img has SHA-256"),
        "\(error)")
      XCTAssertTrue("\(error)".hasSuffix("nothing was kept"), "\(error)")
    }
    assertNothingKept()
    let holders = try await db.templates().map(\.host)
    XCTAssertEqual(holders, ["h1"])
    let state = try await db.rows("SELECT state FROM template_transfer")[0].decode(String.self)
    XCTAssertEqual(state, "failed")
  }

  func testAShortStreamIsRefusedAndNothingIsKept() async throws {
    _ = try await registerOnH1()
    // A sender that says `sent` after the first chunk.
    let url = cluster.url
    sender = Task {
      guard let db = try? await ClusterDatabase.connect(url) else { return }
      while !Task.isCancelled {
        if let transfer = try? await db.claimTransfers(source: "h1").first {
          try? await db.putChunk(transfer: transfer.id, seq: 0, file: 0, data: Data([1, 2, 3]))
          try? await db.setTransfer(transfer.id, state: "sent", from: ["sending"])
        }
        try? await Task.sleep(nanoseconds: 20_000_000)
      }
      await db.close()
    }
    do {
      _ = try await puller().pull(image: "tiny")
      XCTFail("a short copy was kept")
    } catch {
      XCTAssertTrue("\(error)".contains("is short: empty has 3 bytes, the cluster registered 0"), "\(error)")
    }
    assertNothingKept()
  }

  func testAStreamThatStopsIsGivenUpAndNothingIsKept() async throws {
    _ = try await registerOnH1()
    let url = cluster.url
    sender = Task {
      guard let db = try? await ClusterDatabase.connect(url) else { return }
      while !Task.isCancelled {
        if let transfer = try? await db.claimTransfers(source: "h1").first {
          try? await db.putChunk(transfer: transfer.id, seq: 0, file: 0, data: Data([1, 2, 3]))
        }
        try? await Task.sleep(nanoseconds: 20_000_000)
      }
      await db.close()
    }
    do {
      _ = try await puller(stall: 0.5).pull(image: "tiny")
      XCTFail("a stopped stream was kept")
    } catch {
      XCTAssertTrue(
        "\(error)".contains("the stream from host h1 stopped after 3 of 4000751 bytes (no chunk for 0.5 s)"), "\(error)"
      )
    }
    assertNothingKept()
  }

  func testASourceThatNeverSendsIsGivenUp() async throws {
    _ = try await registerOnH1()
    do {
      _ = try await puller(stall: 0.3).pull(image: "tiny")
      XCTFail("pulled from nobody")
    } catch {
      XCTAssertTrue(
        "\(error)".contains("host h1 did not start sending within 0.3 s (is its agent running?)"), "\(error)")
    }
    assertNothingKept()
  }

  func testAMissingOrDeadSourceHostIsAClearError() async throws {
    do {
      _ = try await puller().pull(image: "tiny")
      XCTFail("pulled an image no host has")
    } catch {
      XCTAssertTrue(
        "\(error)".hasPrefix(
          "image 'tiny' is on no host of the cluster; build it with `vmlab --cluster URL image build tiny --host-name HOST`"
        ), "\(error)")
    }
    _ = try await registerOnH1()
    try await register("h1", heartbeat: 0.1)
    try await Task.sleep(nanoseconds: 500_000_000)
    do {
      _ = try await puller().pull(image: "tiny")
      XCTFail("pulled from a dead host")
    } catch {
      XCTAssertEqual(
        "\(error)",
        "image 'tiny' is only on host h1 (dead), which is not live; start that host's agent, or build the image on a live host"
      )
    }
    assertNothingKept()
  }

  func testNamesFromTheDatabaseAreCheckedAsPlainNames() async throws {
    _ = try await registerOnH1()
    try await db.execute(
      """
      UPDATE template SET files = '[{"name": "../../escape", "size": 1, "sha256": "00"}]'::jsonb WHERE host = 'h1'
      """)
    do {
      _ = try await puller().pull(image: "tiny")
      XCTFail("a file name with a path was taken")
    } catch {
      XCTAssertTrue(
        "\(error)".contains("names a template file '../../escape', which is no plain file name"), "\(error)")
    }
    do {
      _ = try await puller().pull(image: "../tiny")
      XCTFail("an image name with a path was taken")
    } catch {
      XCTAssertTrue("\(error)".contains("image name '../tiny' is not allowed"), "\(error)")
    }
    assertNothingKept()
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("escape")))
  }

  func testTheRegistrarForgetsARemovedTemplateAndHashesOnlyChangedOnes() async throws {
    let made = try await registerOnH1()
    let registrar = TemplateRegistrar(host: "h1", library: library("h1"))
    _ = try await registrar.scan(db)
    let unchanged = try await registrar.scan(db)
    XCTAssertEqual(unchanged, [])
    try FileManager.default.removeItem(atPath: made)
    let gone = try await registrar.scan(db)
    XCTAssertEqual(gone, ["template 'tiny' is no longer in this library; forgotten by the cluster"])
    let left = try await db.templates()
    XCTAssertEqual(left, [])
  }
}

/// Progress fractions as a pull reports them.
final class FractionLog: @unchecked Sendable {
  private let lock = NSLock()
  private var list: [Double] = []
  func add(_ value: Double) { lock.withLock { list.append(value) } }
  var values: [Double] { lock.withLock { list } }
}
