import Foundation
import GRDB
import XCTest

@testable import LabKit

/// `CatalogDate` writes and reads the catalog's dates without Foundation's formatter: the text must
/// be the very text GRDB writes, and a date read back GRDB's date (to the last bit, or a unit or two from it), or rows written by
/// either would sort, compare or round-trip differently.
final class CatalogDateTests: XCTestCase {
  /// GRDB's own text for a date.
  func grdbText(_ date: Date) -> String? {
    String.fromDatabaseValue(date.databaseValue)
  }

  /// Dates over 1970-2100, with sub-millisecond fractions (rounded to the nearest millisecond, as
  /// DateFormatter does), and the edges of days, months and leap years.
  func sampleDates() -> [Date] {
    var generator = SystemRandomNumberGenerator()
    var dates = (0..<3000).map { _ in
      Date(timeIntervalSince1970: Double.random(in: 0..<4_102_444_800, using: &generator))
    }
    dates += (0..<1000).map { _ in
      // Whole milliseconds, as dates read back from the catalog are.
      Date(timeIntervalSince1970: Double(Int64.random(in: 0..<4_102_444_800_000, using: &generator)) / 1000)
    }
    for text in [
      "1970-01-01 00:00:00.000", "1999-12-31 23:59:59.999", "2000-02-29 12:00:00.500", "2024-02-29 23:59:59.001",
      "2026-11-30 17:30:51.265", "2100-03-01 00:00:00.000", "2000-12-31 20:57:41.217",
    ] {
      dates.append(try! XCTUnwrap(Date.fromDatabaseValue(text.databaseValue)))
    }
    dates.append(Date(timeIntervalSince1970: 1_764_500_000.9999999))
    dates.append(Date(timeIntervalSince1970: 1_764_500_000.0009999))
    return dates
  }

  func testTextIsGRDBsText() throws {
    for date in sampleDates() {
      XCTAssertEqual(CatalogDate.text(date), grdbText(date), "\(date.timeIntervalSince1970)")
    }
    XCTAssertEqual(CatalogDate.text(Date(timeIntervalSince1970: 1_764_500_000.265)), "2025-11-30 10:53:20.265")
  }

  func testReadingGivesGRDBsDate() throws {
    XCTAssertEqual(
      CatalogDate.date(fromStorageText: "2000-12-18 15:15:31.147")?.timeIntervalSinceReferenceDate.bitPattern,
      13_921_082_113_536_177_471, "the nearest double to the text's time")
    for date in sampleDates() {
      let text = try XCTUnwrap(grdbText(date))
      let expected = try XCTUnwrap(Date.fromDatabaseValue(text.databaseValue))
      let read = try XCTUnwrap(CatalogDate.date(fromStorageText: text), text)
      // The same date to the last bit but for about one in 20,000 (2000-12-18 15:15:31.147 is
      // one), where Foundation's calendar arithmetic rounds the other way: one unit in the last
      // place, rarely two (2000-12-31 20:57:41.217), a few picoseconds, and the same text
      // written back.
      let (mine, grdbs) = (read.timeIntervalSinceReferenceDate, expected.timeIntervalSinceReferenceDate)
      XCTAssertLessThanOrEqual(abs(mine - grdbs), 2 * grdbs.ulp, "\(text): within two units in the last place")
      XCTAssertEqual(CatalogDate.text(read), text, "\(text): written back the same")
    }
  }

  /// Anything but the exact storage format is GRDB's to read (other SQLite forms, numbers, a day
  /// that does not exist, dates before 1970), and dates outside 1970-9999 are GRDB's to write.
  func testOtherFormsAreLeftToGRDB() throws {
    for text in [
      "2026-11-30", "2026-11-30 17:30", "2026-11-30T17:30:51.265", "2026-11-30 17:30:51", "2026-11-30 17:30:51.26",
      "2026-02-30 10:00:00.000", "2026-13-01 10:00:00.000", "1969-12-31 23:59:59.999", "2026-11-30 24:00:00.000",
      "2026-11-30 17:30:51.2a5", "", "garbage that is 23 chars",
    ] {
      XCTAssertNil(CatalogDate.date(fromStorageText: text), text)
    }
    let early = Date(timeIntervalSince1970: -86400.5)
    XCTAssertNil(CatalogDate.text(early))
    XCTAssertEqual(CatalogDate.databaseValue(early), early.databaseValue)
    XCTAssertEqual(CatalogDate.databaseValue(nil as Date?), .null)

    // Through a row: the fast path, GRDB's forms, NULL, and a value that is no date at all.
    let queue = try DatabaseQueue()
    let row = try queue.read { db in
      try XCTUnwrap(
        try Row.fetchOne(
          db,
          sql:
            "SELECT '2026-11-30 17:30:51.265' AS fast, '2026-11-30T17:30:51' AS other, 1764500000 AS number, NULL AS none, 'soon' AS bad"
        ))
    }
    XCTAssertEqual(try row.date(forColumn: "fast"), Date.fromDatabaseValue("2026-11-30 17:30:51.265".databaseValue))
    XCTAssertEqual(try row.date(forColumn: "other"), Date.fromDatabaseValue("2026-11-30T17:30:51".databaseValue))
    XCTAssertEqual(try row.date(forColumn: "number"), Date(timeIntervalSince1970: 1_764_500_000))
    XCTAssertNil(try row.optionalDate(forColumn: "none"))
    XCTAssertThrowsError(try row.date(forColumn: "none"))
    XCTAssertThrowsError(try row.date(forColumn: "bad"))
  }
}
