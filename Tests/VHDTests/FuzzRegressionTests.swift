import TestSupport
import XCTest

@testable import VHD

/// Inputs the fuzzers in Fuzz/ (Scripts/fuzz) found crashing the library, fed back byte for byte. Each
/// must now be refused with a VHDError, never a trap (DESIGN.md rule 3).
final class FuzzRegressionTests: XCTestCase {
  /// FuzzTable: the input is a big-endian entry count then the table's bytes. A count larger than the
  /// bytes hold read past the end of the array (index out of range).
  func testBlockTableShorterThanItsCountIsRefused() {
    // The crash file: 512 bytes, 03 00 50 then zeros: 768 entries claimed, 510 bytes given.
    let crash = hexBytes("030050") + [UInt8](repeating: 0, count: 509)
    let count = Int(crash[0]) << 8 | Int(crash[1])
    assertVHDError(.truncated, field: "BAT") {
      _ = try BlockAllocationTable(decoding: Array(crash[2...]), count: count)
    }
    // Minimized by hand: one entry, no bytes.
    let minimal = hexBytes("0001")
    assertVHDError(.truncated, field: "BAT") { _ = try BlockAllocationTable(decoding: Array(minimal[2...]), count: 1) }
    assertVHDError(.truncated, field: "BAT") { _ = try BlockAllocationTable(decoding: [0, 0, 0], count: 1) }
    assertVHDError(.truncated, field: "BAT") { _ = try BlockAllocationTable(decoding: [], count: -1) }
    XCTAssertEqual(try BlockAllocationTable(decoding: [0, 0, 0, 7, 0xFF], count: 1).entries, [7])
  }
}

/// Bytes from hex digits (whitespace ignored), for inputs written inline.
func hexBytes(_ text: String) -> [UInt8] {
  let digits = Array(text.filter { !$0.isWhitespace })
  precondition(digits.count % 2 == 0, "an even number of hex digits")
  return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}
