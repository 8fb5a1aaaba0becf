import Foundation
import LuaHost
import XCTest

/// `LuaDisplay`: what the REPL shows for tables, lists and objects instead of their addresses.
final class LuaDisplayTests: EngineTestCase {
  private func shown(_ chunk: String, depth: Int = 3) throws -> String {
    let value = try lua("return " + chunk).first ?? .nil
    return try XCTUnwrap(LuaDisplay(state: state, depth: depth).text(for: value), "no text for \(chunk)")
  }

  func testListsOfObjectsAreTablesOfTheirColumns() throws {
    try makeTwoRunningVMs()
    XCTAssertEqual(
      try shown("vmlab.vms()"),
      """
      name   state    disks  additions  host       hostKind        currentCheckpoint
      ----   -----    -----  ---------  ----       --------        -----------------
      db01   running  1      false      simulated  virtual-server
      web01  running  2      true       simulated  virtual-server
      """)
    try lua("web:checkpoint{name='clean'}")
    let checkpoints = try shown("vmlab.checkpoints{mostRecent=true}")
    let lines = checkpoints.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 3, checkpoints)
    XCTAssertTrue(lines[0].hasPrefix("name   vm     id  created"), checkpoints)
    XCTAssertTrue(lines[2].hasPrefix("clean  web01  1   "), "a VM in a cell shows as its name: \(checkpoints)")
    XCTAssertEqual(try shown("vmlab.labs()"), "(no Labs)")
    XCTAssertFalse(checkpoints.contains("0x"), checkpoints)
  }

  /// print and tostring show a list's items too (in one line), in scripts as at the REPL.
  func testToStringOfAListNamesItsItems() throws {
    try makeTwoRunningVMs()
    XCTAssertEqual(
      try lua("return tostring(vmlab.vms()), tostring(vmlab.labs()), tostring(web.disks[1].chain)"),
      ["VMs (2): db01, web01", "Labs (0)", .text("List (1): \(folder!)/library/vms/web01/web01-disk1.vhd")])
    XCTAssertEqual(try text("return tostring(vmlab.vms():where(function() return false end))"), "VMs (0)")
  }

  func testARecordShowsItsFieldsAndListsOfNamesOnePerLine() throws {
    try makeTwoRunningVMs()
    try lua("clean = web:checkpoint{name='clean'}")
    let plan = try shown("clean:restore{whatIf=true}")
    let lines = plan.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.first, "vm                 : web01", plan)
    XCTAssertEqual(lines[1], "operation          : restore", plan)
    XCTAssertTrue(lines.contains("checkpointsRemoved : (none)"), plan)
    // Two disks: two new files, the second under the first.
    let created = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("filesCreated") }, plan)
    XCTAssertTrue(lines[created + 1].hasPrefix(String(repeating: " ", count: 21) + folder), plan)
    XCTAssertTrue(lines[created + 1].hasSuffix("_02.vhd"), plan)
  }

  func testPlainTablesNestToADepthAndSurviveCycles() throws {
    XCTAssertEqual(try shown("{}"), "{}")
    XCTAssertEqual(try shown("{10, 'ten', true}"), "10\nten\ntrue")
    XCTAssertEqual(try shown("{1.5, 2^53}"), "1.5\n9.007199254741e+15")
    XCTAssertEqual(
      try shown("{b = {c = {d = 1}}, a = 'x'}", depth: 1),
      """
      a : x
      b :
        c : {1 field}
      """)
    XCTAssertEqual(try shown("{'first', name = 'n'}"), "[1]  : first\nname : n")
    try lua("loop = {} loop.me = loop loop.list = {loop}")
    XCTAssertEqual(try shown("loop"), "list :\n  list  me\n  ----  --\n  1     {2 fields}\nme   : {2 fields}")
    // Records in a list share one table; missing fields stay blank.
    XCTAssertEqual(
      try shown("{{name = 'a', size = 1}, {name = 'b', extra = true}}"),
      """
      name  size  extra
      ----  ----  -----
      a     1
      b           true
      """)
  }

  func testAPropertyThatFailsShowsItsErrorInItsCell() throws {
    try makeTwoRunningVMs()
    try lua("c = web:checkpoint{name='gone'}; c:merge()")
    let shown = try self.shown("{c}")
    let row = shown.split(separator: "\n").last.map(String.init) ?? ""
    XCTAssertTrue(row.hasPrefix("gone  (checkpoint 1 'gone' of VM 'web01' no longer exists"), shown)
    XCTAssertEqual(row.components(separatedBy: "no longer exists").count, 2, "said once: \(shown)")
  }
}
