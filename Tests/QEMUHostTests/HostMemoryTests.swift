import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// The free-memory check reads MemAvailable and refuses with both numbers.
final class HostMemoryTests: XCTestCase {
  func testMemAvailableIsReadAndAVMAskingForMoreIsRefused() throws {
    let folder = TemporaryFolder(prefix: "vmlab-meminfo-")
    let file = folder.file("meminfo")
    try "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    2097152 kB\n".write(
      toFile: file, atomically: true, encoding: .utf8)
    XCTAssertEqual(HostMemory.available(meminfo: file), 2 << 30)
    XCTAssertNil(HostMemory.available(meminfo: folder.file("missing")))
    try "MemTotal: 1 kB\n".write(toFile: file, atomically: true, encoding: .utf8)
    XCTAssertNil(HostMemory.available(meminfo: file), "no MemAvailable line: nothing is refused")

    XCTAssertNoThrow(try HostMemory.check(vm: "a", memory: 2 << 30, available: 2 << 30))
    XCTAssertNoThrow(try HostMemory.check(vm: "a", memory: 4 << 30, available: nil))
    XCTAssertThrowsError(try HostMemory.check(vm: "web01", memory: 3 << 30, available: 1536 << 20)) { error in
      XCTAssertTrue(
        "\(error)".contains("VM 'web01' needs 3.0 GiB of memory, but this host has 1.5 GiB free"), "\(error)")
    }
    XCTAssertEqual(HostMemory.describe(256 << 20), "256 MiB")
  }
}
