import XCTest

@testable import Cluster

/// The placement choice as a pure function of the hosts' room: spreading by free memory, only
/// live hosts, `--host-name`, reservations, and the errors when nothing fits.
final class PlacementRuleTests: XCTestCase {
  let gib: Int64 = 1 << 30

  private func room(_ name: String, memory: Int64, disk: Int64 = 100 << 30, state: HostStatus.State = .alive)
    -> HostRoom
  {
    HostRoom(name: name, state: state, memoryFree: memory, diskFree: disk)
  }

  private func needs(_ count: Int, memory: Int64, disk: Int64 = 8 << 30, host: String? = nil) -> [PlacementNeed] {
    (1...count).map { PlacementNeed(vm: "vm\($0)", memory: memory, disk: disk, host: host) }
  }

  func testThirtyVMsAskedAtOnceSpreadInProportionToFreeMemory() throws {
    let rooms = [room("h1", memory: 16 * gib), room("h2", memory: 8 * gib), room("h3", memory: 8 * gib)]
    let hosts = try PlacementRule.choose(needs(30, memory: gib, disk: gib), rooms: rooms)
    let counts = Dictionary(hosts.map { ($0, 1) }, uniquingKeysWith: +)
    // Each VM goes where the most is left: h1 alone until it is down to 8 GiB, then the three
    // in turn (ties go to the most free disk, which h1 has used, then to the first name).
    XCTAssertEqual(counts, ["h1": 15, "h2": 8, "h3": 7])
  }

  func testOnlyLiveHostsTakeVMs() throws {
    let rooms = [
      room("h1", memory: 2 * gib), room("h2", memory: 64 * gib, state: .dead),
      room("h3", memory: 64 * gib, state: .stopped),
    ]
    XCTAssertEqual(try PlacementRule.choose(needs(2, memory: gib), rooms: rooms), ["h1", "h1"])
  }

  func testAHostNameIsHonouredEvenWhenAnotherHasMoreRoom() throws {
    let rooms = [room("h1", memory: 2 * gib), room("h2", memory: 64 * gib)]
    XCTAssertEqual(try PlacementRule.choose(needs(2, memory: gib, host: "h1"), rooms: rooms), ["h1", "h1"])
  }

  func testPinnedVMsTakeTheirRoomBeforeTheOthersAreSpread() throws {
    let rooms = [room("h1", memory: 4 * gib), room("h2", memory: 3 * gib)]
    let asked = [
      PlacementNeed(vm: "free", memory: gib, disk: 0),
      PlacementNeed(vm: "pinned", memory: 2 * gib, disk: 0, host: "h1"),
    ]
    // The pinned VM takes 2 GiB of h1 first, so the other one goes to h2, which then has the most.
    XCTAssertEqual(try PlacementRule.choose(asked, rooms: rooms), ["h2", "h1"])
  }

  func testLargerVMsArePlacedFirstSoTheyStillFit() throws {
    let rooms = [room("h1", memory: 3 * gib), room("h2", memory: 2 * gib)]
    let asked = [
      PlacementNeed(vm: "small1", memory: gib, disk: 0), PlacementNeed(vm: "small2", memory: gib, disk: 0),
      PlacementNeed(vm: "big", memory: 3 * gib, disk: 0),
    ]
    XCTAssertEqual(try PlacementRule.choose(asked, rooms: rooms), ["h2", "h2", "h1"])
  }

  func testDiskMustFitToo() throws {
    let rooms = [room("h1", memory: 64 * gib, disk: 4 * gib), room("h2", memory: 2 * gib, disk: 100 * gib)]
    XCTAssertEqual(try PlacementRule.choose(needs(1, memory: gib, disk: 8 * gib), rooms: rooms), ["h2"])
  }

  func testNothingFitsNamesWhatWasAskedAndWhatEachHostHas() {
    let rooms = [
      room("host1", memory: 3 * gib), room("host2", memory: 3 * gib), room("host3", memory: 2 * gib),
      room("host4", memory: 64 * gib, state: .dead),
    ]
    XCTAssertThrowsError(try PlacementRule.choose(needs(30, memory: gib), rooms: rooms)) { error in
      XCTAssertEqual(
        "\(error)",
        "30 VMs of 1 GiB need 30 GiB of memory; the live hosts have 8 GiB free: host1 3 GiB, host2 3 GiB, host3 2 GiB (not live: host4 dead); nothing was created"
      )
    }
  }

  func testNotEnoughDiskIsSaidSo() {
    let rooms = [room("h1", memory: 64 * gib, disk: 10 * gib), room("h2", memory: 64 * gib, disk: 5 * gib)]
    XCTAssertThrowsError(try PlacementRule.choose(needs(2, memory: gib, disk: 8 * gib), rooms: rooms)) { error in
      XCTAssertEqual(
        "\(error)",
        "2 VMs with 8 GiB of disk need 16 GiB of disk; the live hosts have 15 GiB of disk free: h1 10 GiB, h2 5 GiB; nothing was created"
      )
    }
  }

  func testRoomSplitAcrossHostsIsNotEnoughForOneBigVM() {
    let rooms = [room("h1", memory: 2 * gib), room("h2", memory: 2 * gib)]
    XCTAssertThrowsError(
      try PlacementRule.choose([PlacementNeed(vm: "big", memory: 3 * gib, disk: 0)], rooms: rooms)
    ) { error in
      XCTAssertTrue(
        "\(error)".hasPrefix("VM 'big' (3 GiB of memory, 0 bytes of disk) fits on no live host; free: h1 2 GiB memory"),
        "\(error)")
    }
  }

  func testAPinnedHostThatIsFullUnknownOrDeadIsAnError() {
    let rooms = [room("h1", memory: gib / 2), room("h2", memory: 8 * gib, state: .dead)]
    XCTAssertThrowsError(try PlacementRule.choose(needs(1, memory: gib, host: "h1"), rooms: rooms)) { error in
      XCTAssertEqual(
        "\(error)",
        "VM 'vm1' needs 1 GiB of memory and 8 GiB of disk; host 'h1' (--host-name) has 512 MiB of memory and 100 GiB of disk free; nothing was created"
      )
    }
    XCTAssertThrowsError(try PlacementRule.choose(needs(1, memory: gib, host: "h9"), rooms: rooms)) { error in
      XCTAssertEqual("\(error)", "VM 'vm1': no host 'h9' in the cluster (hosts: h1, h2); nothing was created")
      XCTAssertEqual((error as? ClusterError)?.kind, .notFound)
    }
    XCTAssertThrowsError(try PlacementRule.choose(needs(1, memory: gib, host: "h2"), rooms: rooms)) { error in
      XCTAssertTrue("\(error)".contains("host 'h2' is dead"), "\(error)")
    }
  }

  func testNoLiveHostAtAll() {
    XCTAssertThrowsError(try PlacementRule.choose(needs(1, memory: gib), rooms: [])) { error in
      XCTAssertTrue("\(error)".hasPrefix("no live host in the cluster; start `vmlab agent"), "\(error)")
    }
  }

  func testARoomIsTheHeartbeatLessWhatWasAskedSinceAndNoMoreThanTheOffer() {
    var ledger = HostRoom.Ledger(measuredMemory: 10 * gib, measuredDisk: 100 * gib)
    ledger.sinceHeartbeat = [PlacementNeed(vm: "a", memory: 2 * gib, disk: 8 * gib)]
    ledger.committed = ledger.sinceHeartbeat + [PlacementNeed(vm: "old", memory: 3 * gib, disk: 8 * gib)]
    XCTAssertEqual(
      HostRoom(name: "h", state: .alive, ledger: ledger),
      HostRoom(name: "h", state: .alive, memoryFree: 8 * gib, diskFree: 92 * gib))
    ledger.offeredMemory = 6 * gib
    ledger.offeredDisk = 20 * gib
    XCTAssertEqual(
      HostRoom(name: "h", state: .alive, ledger: ledger),
      HostRoom(name: "h", state: .alive, memoryFree: 1 * gib, diskFree: 4 * gib))
    ledger.offeredMemory = 2 * gib
    XCTAssertEqual(HostRoom(name: "h", state: .alive, ledger: ledger).memoryFree, 0)
  }

  func testAStepsNeedCountsItsDisksItsImageAndTheDefaultMemory() {
    let step = CreateVMStep(name: "web", disks: [1 << 30, 2 << 30], image: "tiny")
    XCTAssertEqual(
      PlacementNeed(step: step, imageBytes: ["tiny": 100]),
      PlacementNeed(vm: "web", memory: 1 << 30, disk: (3 << 30) + 100))
  }
}
