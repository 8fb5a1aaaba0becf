import Foundation
import LuaHost
import XCTest

/// Checkpoint objects, `vmlab.checkpoints{...}` and the Checkpoints pipeline.
final class EngineCheckpointTests: EngineTestCase {
  func testCheckpointPropertiesAndDescription() throws {
    try makeTwoRunningVMs()
    let results = try lua(
      """
      local cp, action = web:checkpoint{name="clean", description="before the class"}
      local second = web:checkpoint("second")
      return action, cp.name, cp.description, cp.vm == web, #cp.disks, cp.parent, second.parent == cp, cp.online,
        second.current, cp.current, cp.space, type(cp.id), #web:checkpoints(), web:mostRecentCheckpoint() == second,
        tostring(cp), cp.created, getmetatable(web:checkpoints()).__name
      """)
    XCTAssertEqual(
      Array(results[0..<14]),
      ["shut down", "clean", "before the class", true, 2, nil, true, false, true, false, 0, "number", 2, true])
    let description = try XCTUnwrap(results[14].stringValue)
    let created = try XCTUnwrap(results[15].stringValue)
    XCTAssertEqual(description, "Checkpoint 1 'clean' of web01 (\(created))")
    XCTAssertNotNil(created.range(of: #"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"#, options: .regularExpression), created)
    XCTAssertEqual(results[16], "Checkpoints")
    XCTAssertEqual(try lua(#"return db:checkpoint("x") ~= nil, select(2, db:checkpoint("y"))"#), [true, "turned off"])
    XCTAssertEqual(try lua("return vmlab.vm.create{name='fresh', disks={'1M'}}:mostRecentCheckpoint()"), [nil])
  }

  func testRestoreWithWhatIfChangesNothingThenRestores() throws {
    try makeTwoRunningVMs()
    try lua(
      """
      web:write(1, 0, "AAAA")
      cp = web:checkpoint("clean")
      web:start()
      web:write(1, 0, "BBBB")
      """)
    let plan = try lua(
      "local p = cp:restore{whatIf=true}; return p.operation, p.vm, p.applied, p.powerAction, #p.filesRemoved, web:read(1, 0, 4), web.state"
    )
    XCTAssertEqual(plan, ["restore", "web01", false, "shut down", 2, "BBBB", "running"])
    let restored = try lua("local p = cp:restore(); return p.applied, p.state, p.checkpoint == cp, web:read(1, 0, 4)")
    XCTAssertEqual(restored, [true, "running", true, "AAAA"])  // it ran: it boots again, restored
    // Restored again and again: the checkpoint stays.
    XCTAssertEqual(
      try lua("web:start(); web:write(1, 0, 'CCCC'); cp:restore(); return web:read(1, 0, 4), cp.name"),
      ["AAAA", "clean"])
  }

  /// `:restore{all=true}` is one journaled engine operation: when one VM cannot be restored, none
  /// is (it used to restore the others and report a partial failure).
  func testABulkRestoreIsAllOrNothing() throws {
    try makeTwoRunningVMs()
    try lua(
      """
      web:write(1, 0, "AAAA"); db:write(1, 0, "aaaa")
      vmlab.lab.create{name="class", vms={web, db}}:checkpoint{name="clean"}
      web:start(); db:start()
      web:write(1, 0, "BBBB"); db:write(1, 0, "bbbb")
      """)
    let frozen = try text("return vmlab.checkpoints{vm='db01'}[1].disks[1]")
    try FileManager.default.moveItem(atPath: frozen, toPath: frozen + ".aside")
    let message = errorMessage("vmlab.checkpoints{mostRecent=true}:restore{all=true}")
    XCTAssertTrue(message.contains("db01"), message)
    XCTAssertEqual(try lua("return web:read(1, 0, 4)"), ["BBBB"], "web01 was not restored either")
    XCTAssertEqual(try lua("return web.state, db.state"), ["running", "running"], "both run again as they did")
    try FileManager.default.moveItem(atPath: frozen + ".aside", toPath: frozen)
    XCTAssertEqual(try lua("return db:read(1, 0, 4)"), ["bbbb"])
    let restored = try lua(
      "local r = vmlab.checkpoints{mostRecent=true}:restore{all=true}; return #r, r[1].applied, r[1].state, #r[1].filesCreated + #r[2].filesCreated, web:read(1, 0, 4), db:read(1, 0, 4)"
    )
    XCTAssertEqual(restored, [2, true, "running", 3, "AAAA", "aaaa"])
  }

  /// A bulk merge follows the same rule as a bulk restore: several VMs need {all=true}.
  func testABulkMergeMustBeDeliberate() throws {
    try makeTwoRunningVMs()
    try lua("web:checkpoint('one'); db:checkpoint('one'); web:checkpoint('two'); db:checkpoint('two')")
    let message = errorMessage("vmlab.checkpoints{mostRecent=true}:merge()")
    // The engine's words, as the command line's `checkpoint merge` without --all gets them.
    XCTAssertTrue(
      message.contains(
        "merge: this would change 2 VMs (db01, web01); changing several VMs at once must be deliberate: pass {all=true}"
      ),
      message)
    XCTAssertTrue(errorMessage("vmlab.checkpoints{mostRecent=true}:merge{async=true}").contains("2 VMs"))
    XCTAssertEqual(try lua("return #vmlab.checkpoints()"), [4], "nothing was merged")
    XCTAssertEqual(
      try lua("return #vmlab.checkpoints{mostRecent=true}:merge{whatIf=true}, #vmlab.checkpoints()"), [2, 4])
    XCTAssertEqual(
      try lua("return #vmlab.checkpoints{vm='web01', mostRecent=true}:merge(), #vmlab.checkpoints()"), [1, 3])
    XCTAssertEqual(try lua("return #vmlab.checkpoints{mostRecent=true}:merge{all=true}, #vmlab.checkpoints()"), [2, 1])
  }

  func testMergeAndRemoveLeaveStaleHandles() throws {
    try makeTwoRunningVMs()
    try lua(
      """
      web:write(1, 0, "one")
      first = web:checkpoint("first")
      web:start(); web:write(1, 0, "two")
      second = web:checkpoint("second")
      web:start(); web:write(1, 0, "six")
      """)
    let preview = try lua(
      "local p = first:merge{whatIf=true}; return p.applied, p.operation, #p.checkpointsRemoved, first.name")
    XCTAssertEqual(preview, [false, "merge", 2, "first"])
    XCTAssertEqual(try lua("local p = second:remove{whatIf=true}; return p.applied, p.operation"), [false, "remove"])
    let merged = try lua(
      "local p = first:merge(); return p.applied, p.alsoAffected[1], web:read(1, 0, 3), #web:checkpoints()")
    XCTAssertEqual(merged, [true, "second", "six", 0])
    assertError("return first.space", contains: "checkpoint 1 'first' of VM 'web01' no longer exists")
    assertError("second:restore()", contains: "checkpoint 2 'second' of VM 'web01' no longer exists")
    XCTAssertTrue(try text("return tostring(second)").hasSuffix(", merged or removed)"))
    XCTAssertEqual(try lua("return pcall(first.restore, first)")[0], false)
    XCTAssertEqual(
      try lua("local c = web:checkpoint('third'); local p = c:remove(); return p.applied, #web:checkpoints()"),
      [true, 0])
  }

  func testRemovingTheVMMakesItsCheckpointsStale() throws {
    try makeTwoRunningVMs()
    try lua("cp = db:checkpoint('clean'); db:turnOff(); db:remove()")
    assertError("return cp.created", contains: "no longer exists")
    assertError("return cp.vm", contains: "no longer exists")
  }

  func testDiffExportAndSpace() throws {
    try makeTwoRunningVMs()
    let results = try lua(
      """
      cp = web:checkpoint("clean")
      web:start()
      web:write(1, 65536, string.rep("x", 4096))
      web:write(2, 0, "y")
      local diff = cp:diff()
      local exported = cp:export(folder .. "/export")
      return #diff, diff[1].disk, diff[1].changedBytes, diff[1].ranges[1].offset, diff[1].ranges[1].length,
        diff[2].changedBytes, #exported, exported[1].type, exported[1].size
      """)
    XCTAssertEqual(results, [2, 1, 4096, 65536, 4096, 512, 2, "dynamic", 16_781_312])
    XCTAssertEqual(try lua("return web:checkpoint('later').space > 0")[0], true)
    assertError("cp:export(folder .. '/x', 'differencing')", contains: #""dynamic" or "fixed""#)
  }

  func testCheckpointQueries() throws {
    try makeTwoRunningVMs()
    try lua("web:checkpoint('a'); web:checkpoint('b'); db:checkpoint('a')")
    let results = try lua(
      """
      local all = vmlab.checkpoints()
      local recent = vmlab.checkpoints{mostRecent=true}
      local ofWeb = vmlab.checkpoints{vm=web}
      local named = vmlab.checkpoints{vm="db01", name="a"}
      local recentWeb = vmlab.checkpoints{vm="web01", mostRecent=true}
      return #all, #recent, recent[1].vm.name, recent[2].name, #ofWeb, #named, recentWeb[1].name, #vmlab.checkpoints{name="a"}
      """)
    XCTAssertEqual(results, [3, 2, "db01", "b", 2, 1, "b", 2])
    assertError("vmlab.checkpoints{vm='ghost'}", contains: "VM 'ghost' not found")
    assertError("vmlab.checkpoints{mostrecent=true}", contains: "unknown option 'mostrecent'")
    assertError("vmlab.checkpoints{vm=42}", contains: "VM or VM name expected, got number")
  }

  func testBulkRestoreOverEveryVMMustBeDeliberate() throws {
    try makeTwoRunningVMs()
    try lua(
      """
      web:write(1, 0, "web-clean"); db:write(1, 0, "db-clean")
      web:checkpoint("clean"); db:checkpoint("clean")
      web:start(); db:start()
      web:write(1, 0, "web-dirty"); db:write(1, 0, "db-dirty")
      recent = vmlab.checkpoints{mostRecent=true}
      """)
    assertError(
      "recent:restore()",
      contains: "restore: this would change 2 VMs (db01, web01); changing several VMs at once must be deliberate")
    XCTAssertEqual(try lua("return web:read(1, 0, 9), db:read(1, 0, 8)"), ["web-dirty", "db-dirty"])
    let preview = try lua(
      "local plans = recent:restore{whatIf=true}; return #plans, plans[1].applied, plans[1].vm, plans[2].vm")
    XCTAssertEqual(preview, [2, false, "db01", "web01"])
    // The pipeline: select, filter by VM, restore (one VM: no confirmation needed).
    let one = try lua(
      "local r = recent:where(function(c) return c.vm.name == 'web01' end):restore(); return #r, r[1].applied, web:read(1, 0, 9), db:read(1, 0, 8)"
    )
    XCTAssertEqual(one, [1, true, "web-clean", "db-dirty"])
    let all = try lua("local r = recent:restore{all=true}; return #r, db:read(1, 0, 8)")
    XCTAssertEqual(all, [2, "db-clean"])
  }

  /// The list operations hand the ids to the engine without reading each handle first; a list that
  /// holds a checkpoint merged away since is still refused whole, with the stale handle named, and
  /// no VM changes.
  func testBulkOperationsOnAListWithAStaleHandleChangeNothing() throws {
    try makeTwoRunningVMs()
    try lua(
      """
      web:write(1, 0, "web-clean"); db:write(1, 0, "db-clean")
      web:checkpoint("clean"); db:checkpoint("clean")
      web:start(); db:start()
      web:write(1, 0, "web-dirty"); db:write(1, 0, "db-dirty")
      recent = vmlab.checkpoints{mostRecent=true}
      vmlab.checkpoints{vm='db01'}[1]:merge()
      """)
    let stale = "checkpoint 2 'clean' of VM 'db01' no longer exists"
    assertError("recent:restore{all=true}", contains: stale)
    assertError("recent:restore{whatIf=true}", contains: stale)
    assertError("recent:restore{async=true, all=true}", contains: stale)
    assertError("recent:merge{all=true}", contains: stale)
    assertError("recent:merge{async=true, all=true}", contains: stale)
    XCTAssertEqual(
      try lua("return web:read(1, 0, 9), db:read(1, 0, 8), #web:checkpoints()"), ["web-dirty", "db-dirty", 1])
    // Without the stale handle the same pipeline goes through.
    let restored = try lua(
      "local r = recent:where(function(c) return c.id ~= 2 end):restore(); return #r, web:read(1, 0, 9)")
    XCTAssertEqual(restored, [1, "web-clean"])
  }

  func testBulkRestoreRefusesSeveralCheckpointsOfOneVM() throws {
    try makeTwoRunningVMs()
    try lua("web:checkpoint('a'); web:checkpoint('b')")
    assertError(
      "web:checkpoints():restore()",
      contains: "restore: 2 checkpoints of VM 'web01' were chosen; a VM is restored to one checkpoint at a time")
    assertError("web:checkpoints():restore{whatIf=true}", contains: "2 checkpoints of VM 'web01' were chosen")
    assertError("web:checkpoints():restore{async=true, all=true}", contains: "2 checkpoints of VM 'web01' were chosen")
    assertError("web:checkpoints():restore{al=true}", contains: "unknown option 'al'")
    assertError(
      "local list = web:checkpoints(); list[1] = web; list:restore()",
      contains: "item 1 of the list is a VM, not a Checkpoint")
  }

  func testBulkMergeAcrossVMs() throws {
    try makeTwoRunningVMs()
    try lua("web:checkpoint('a'); web:checkpoint('b'); db:checkpoint('a')")
    XCTAssertEqual(
      try lua("local plans = vmlab.checkpoints():merge{whatIf=true}; return #plans, plans[1].applied"), [3, false])
    // Merging web01's first checkpoint folds the second one too, which is then skipped.
    XCTAssertEqual(
      try lua("local plans = vmlab.checkpoints():merge{all=true}; return #plans, #vmlab.checkpoints()"), [2, 0])
  }
}
