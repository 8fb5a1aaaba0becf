import Foundation
import LuaHost
import XCTest

/// `vmlab.vm`, `vmlab.vms()` and the VM class.
final class EngineVMTests: EngineTestCase {
  func testCreateListAndDescribeVMs() throws {
    let results = try lua(
      """
      local web = vmlab.vm.create{name="web01", disks={"16M", 4194304}, additions=true, host="hypervisor"}
      local db = vmlab.vm.create{name="db01", disks={"8M"}}
      local all = vmlab.vms()
      return tostring(web), tostring(db), web.name, web.state, web.additions, web.hostKind, #web.disks,
        web.disks[1].size, web.disks[2].size, #all, all[1].name, all[2].name, vmlab.vm.get("WEB01") == web,
        vmlab.vm.exists("db01"), vmlab.vm.exists("nope"), type(web.id), web.created:match("^%d+%-%d+%-%d+ %d+:%d+:%d+$") ~= nil,
        web.currentCheckpoint, getmetatable(all).__name, #all:where(function(vm) return vm.additions end)
      """)
    XCTAssertEqual(
      results,
      [
        "VM web01 (stopped, 2 disks)", "VM db01 (stopped, 1 disk)", "web01", "stopped", true, "hypervisor", 2,
        16_781_312, 4_212_736, 2, "db01", "web01", true, true, false, "number", true, nil, "VMs", 1,
      ])
    XCTAssertEqual(libraryOpens, 1, "the library opens once, on first use")
    XCTAssertTrue(try text("return vmlab.vms()[2].disks[1].path").hasPrefix(folder + "/library/vms/web01/"))
  }

  func testPowerMethodsChainAndEngineErrorsAreCatchable() throws {
    try lua(#"web = vmlab.vm.create{name="web01", disks={"8M"}}"#)
    XCTAssertEqual(try lua("return web:start().state, tostring(web)"), ["running", "VM web01 (running, 1 disk)"])
    // No guest additions: a graceful shutdown is refused by the engine, as a catchable Lua error.
    XCTAssertEqual(
      try lua("local ok, message = pcall(web.shutdown, web); return ok, message:find('no guest additions') ~= nil"),
      [false, true])
    XCTAssertEqual(
      try lua("return web:save().state, web:start().state, web:turnOff().state"), ["saved", "running", "stopped"])
    assertError("web:save()", contains: "only a running VM can be saved")
  }

  func testGuestWritesAndReads() throws {
    try makeTwoRunningVMs()
    XCTAssertEqual(
      try lua(#"return web:write(2, 1024, "guest data"), web:read(2, 1024, 10), web:read(1, 1024, 2)"#),
      [10, "guest data", "\0\0"])
    assertError(#"web:write(3, 0, "x")"#, contains: "has no disk 3")
    try lua("web:turnOff()")
    assertError(#"web:write(1, 0, "x")"#, contains: "writes only while it runs")
    XCTAssertEqual(try lua("return web:read(2, 1024, 5)"), ["guest"])
  }

  func testCreateFromADiskAndAsLinkedClones() throws {
    let results = try lua(
      """
      local base = vmlab.disk.create{path=folder .. "/base.vhd", size="8M"}
      base:write(0, "golden")
      local copy = vmlab.vm.create{name="copy", from=folder .. "/base.vhd"}
      local one = vmlab.vm.create{name="student01", from=base, linked=true}
      local two = vmlab.vm.create{name="student02", from=base, linked=true}
      one:start()
      one:write(1, 0, "edited")
      return copy:read(1, 0, 6), one:read(1, 0, 6), two:read(1, 0, 6), #one.disks[1].chain, #two.disks[1].chain
      """)
    XCTAssertEqual(results, ["golden", "edited", "golden", 2, 2])
  }

  func testBadCreateArguments() throws {
    assertError(#"vmlab.vm.create{name="x"}"#, contains: "field 'disks': a list of sizes")
    assertError(#"vmlab.vm.create{name="x", disks={}}"#, contains: "needs at least one disk")
    assertError(#"vmlab.vm.create{name="../escape", disks={"1M"}}"#, contains: "escape")
    assertError(
      #"vmlab.vm.create{name="x", disks={"1M"}, host="cloud"}"#,
      contains:
        #"field 'host': a host ("simulated") or a host kind ("virtual-server", "hypervisor") expected, got "cloud""#)
    assertError(#"vmlab.vm.create{name="x", disks={"1M"}, from="a.vhd"}"#, contains: "either 'disks' or 'from'")
    assertError(#"vmlab.vm.create{name="x", disks={"1M"}, linked=true}"#, contains: "'linked' needs 'from'")
    assertError(#"vmlab.vm.create{name="x", disks={"1M"}, addtions=true}"#, contains: "unknown option 'addtions'")
    assertError(#"vmlab.vm.create("x")"#, contains: "table expected, got string")
    assertError(#"vmlab.vm.get("ghost")"#, contains: "VM 'ghost' not found")
    try lua(#"vmlab.vm.create{name="dup", disks={"1M"}}"#)
    assertError(#"vmlab.vm.create{name="DUP", disks={"1M"}}"#, contains: "already exists")
  }

  func testRemovedVMsAreStaleHandles() throws {
    try lua(#"web = vmlab.vm.create{name="web01", disks={"8M"}}; old = vmlab.vm.get("web01")"#)
    try lua("web:remove()")
    assertError("return web.state", contains: "VM 'web01' no longer exists (it was removed)")
    assertError("web:start()", contains: "no longer exists")
    XCTAssertEqual(try text("return tostring(web)"), "VM web01 (removed)")
    // A new VM under the same name is not the old handle's VM.
    try lua(#"vmlab.vm.create{name="web01", disks={"8M"}}"#)
    assertError("return old.state", contains: "another VM has its name now")
    XCTAssertEqual(try lua(#"return web.name, vmlab.vm.get("web01") == web"#), ["web01", false])
  }

  func testRemovingARunningVMIsRefused() throws {
    try makeTwoRunningVMs()
    assertError("web:remove()", contains: "running")
  }

  func testBulkPowerOnTheVMsList() throws {
    try lua(#"vmlab.vm.create{name="a", disks={"1M"}}; vmlab.vm.create{name="b", disks={"1M"}}"#)
    XCTAssertEqual(
      try lua("local vms = vmlab.vms():start(); return vms[1].state, vms[2].state, vmlab.vms():turnOff()[2].state"),
      ["running", "running", "stopped"])
    assertError(
      "local list = vmlab.vms(); list[3] = 42; list:start()", contains: "item 3 of the list is a number, not a VM")
  }
}
