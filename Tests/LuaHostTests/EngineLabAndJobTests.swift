import Foundation
import LabKit
import LuaHost
import TestSupport
import XCTest

/// Labs, jobs and `vmlab.wait`, the library's lazy opening, and garbage collection of handles.
final class EngineLabAndJobTests: EngineTestCase {
  func testLabsCheckpointAndRestoreAsOne() throws {
    try makeTwoRunningVMs()
    try lua(#"vmlab.vm.create{name="extra", disks={"1M"}}"#)
    let results = try lua(
      """
      local lab = vmlab.lab.create{name="class1", vms={web, "db01"}}
      web:write(1, 0, "clean")
      local taken = lab:checkpoint{name="start", description="the class begins"}
      web:start(); web:write(1, 0, "dirty")
      local restored = lab:restore("start")
      local again = lab:restore{mostRecent=true}
      return tostring(lab), #lab.vms, lab.vms[1] == web, #taken, taken[1].vm, taken[1].checkpoint, taken[1].action,
        #restored, web:read(1, 0, 5), restored[1].state, #again, table.concat(lab:checkpoints(), ","),
        vmlab.lab.get("CLASS1") == lab, #vmlab.labs(), tostring(lab:add("extra")), #lab.vms
      """)
    XCTAssertEqual(
      results,
      [
        "Lab class1 (2 VMs)", 2, true, 2, "web01", "start", "shut down", 2, "clean", "running", 2, "start", true, 1,
        "Lab class1 (3 VMs)", 3,
      ])
    assertError("vmlab.lab.get('class1'):restore{}", contains: "give a checkpoint name, or {mostRecent=true}")
    assertError("vmlab.lab.get('class1'):restore('nope')", contains: "has no checkpoint 'nope'")
    assertError("vmlab.lab.create{name='class1'}", contains: "already exists")
    assertError("vmlab.lab.create{name='other', vms={'ghost'}}", contains: "VM 'ghost' not found")
    assertError("vmlab.lab.create{name='empty'}:checkpoint('x')", contains: "has no VMs")
    try lua("lab = vmlab.lab.get('class1'); lab:remove()")
    assertError("return lab.vms", contains: "lab 'class1' no longer exists")
  }

  func testAsyncCheckpointsAreJobsAndWaitWaitsForAll() throws {
    try makeTwoRunningVMs()
    let results = try lua(
      """
      local job = web:checkpoint{name="async", async=true}
      local same = job:wait()
      return tostring(job):match("^Job %d+ checkpoint of web01") ~= nil, same == job, job.status, job.done, job.progress,
        job.result:find("'async'") ~= nil, job.error, job.kind, job.target, type(job.duration), #web:checkpoints()
      """)
    XCTAssertEqual(results, [true, true, "completed", true, 1.0, true, nil, "checkpoint", "web01", "number", 1])
    // A bulk checkpoint of many VMs: one job per VM, run in parallel.
    let bulk = try lua(
      """
      local jobs = vmlab.vms():checkpoint{name="bulk", async=true}
      local finished, failed = vmlab.wait(jobs)
      local listed = vmlab.jobs()
      return #jobs, getmetatable(jobs).__name, #finished, failed, finished[1].status, finished[2].status,
        #vmlab.checkpoints{name="bulk"}, #listed, vmlab.job(jobs[1].id) == jobs[1], select(2, vmlab.wait(jobs[1], jobs[2]))
      """)
    XCTAssertEqual(bulk, [2, "Jobs", 2, 0, "completed", "completed", 2, 3, true, 0])
    // Synchronous bulk checkpoint: the checkpoints come back.
    XCTAssertEqual(
      try lua("local cps = vmlab.vms():checkpoint('sync'); return #cps, cps[1].name, cps[2].vm.name"),
      [2, "sync", "web01"])
    // Async restore and merge, and a lab's async checkpoint.
    let more = try lua(
      """
      local restore = web:mostRecentCheckpoint():restore{async=true}:wait()
      local merge = db:checkpoints()[1]:merge{async=true}
      local lab = vmlab.lab.create{name="l", vms={web, db}}
      local labJob = lab:checkpoint{name="labasync", async=true}:wait()
      return restore.status, restore.kind, merge:wait().kind, labJob.kind, labJob.target, labJob.status,
        labJob.result, #vmlab.checkpoints{name="labasync"}
      """)
    XCTAssertEqual(
      more,
      [
        "completed", "restore", "merge", "lab-checkpoint", "l", "completed",
        "lab 'l': checkpoint 'labasync' of 2 VM(s)", 2,
      ])
    // A lab's async checkpoint is all or nothing, like the synchronous one.
    let library = try XCTUnwrap(library)
    // One VM's disk fails: no VM gets the checkpoint.
    library.faultInjection =
      FaultPlan(step: "checkpoint:disk1", error: LabKitError(.failed, "simulated disk failure")).hit
    let failed = try lua(
      "local job = vmlab.lab.get('l'):checkpoint{name='half', async=true}:wait(); return job.status, job.error")
    library.faultInjection = nil
    XCTAssertEqual(failed.first, "failed")
    XCTAssertTrue(
      failed.last?.stringValue?.contains("lab 'l' was not checkpointed (no VM was): simulated disk failure") ?? false,
      "\(failed)")
    XCTAssertEqual(try lua("return #vmlab.checkpoints{name='half'}"), [0])
    assertError("vmlab.wait({1, 2})", contains: "item 1 is a number, not a Job")
    assertError("vmlab.job(9999)", contains: "job 9999 not found")
  }

  func testFailedJobsReportTheirErrors() throws {
    try makeTwoRunningVMs()
    try lua("local _ = web.name")  // opens the library
    let library = try XCTUnwrap(library)
    library.faultInjection = { step in
      if step == "checkpoint:disk1" { throw LabKitError(.failed, "simulated disk failure") }
    }
    let results = try lua(
      """
      local jobs = vmlab.vms():checkpoint{name="doomed", async=true}
      local finished, failed = vmlab.wait(jobs)
      return failed, finished[1].status, finished[1].error:find("simulated disk failure") ~= nil, tostring(finished[1]):find("failed") ~= nil
      """)
    XCTAssertEqual(results, [2, "failed", true, true])
    assertError("vmlab.vms():checkpoint('doomed2')", contains: "checkpoint 'doomed2' failed for 2 of 2 VMs")
    let lab = errorMessage("vmlab.lab.create{name='l', vms={web, db}}:checkpoint('x')")
    XCTAssertTrue(lab.contains("was not checkpointed"), lab)
    library.faultInjection = nil
  }

  func testTheLibraryOpensOnlyWhenNeededAndOpenErrorsAreLuaErrors() throws {
    try lua(#"local d = vmlab.disk.create{path=folder .. "/a.vhd", size="1M"}; return d.size, print ~= nil"#)
    XCTAssertEqual(libraryOpens, 0)
    XCTAssertEqual(
      try text("return vmlab.library().path"), URL(fileURLWithPath: folder + "/library").standardizedFileURL.path)
    XCTAssertEqual(try lua("return vmlab.library().vms, vmlab.library().hostKind"), [0, "virtual-server"])
    XCTAssertEqual(libraryOpens, 1)

    let other = try LuaState()
    defer { other.close() }
    VMLabModule.install(in: other) { throw LabKitError(.busy, "another vmlab process is using the library") }
    XCTAssertEqual(
      try other.run("local ok, message = pcall(vmlab.vms); return ok, message"),
      [false, "cannot open the vmlab library: another vmlab process is using the library"])
  }

  func testHandlesAreCollected() throws {
    try makeTwoRunningVMs()
    try lua("cp = web:checkpoint('clean'); job = web:checkpoint{name='j', async=true}:wait()")
    state.collectGarbage()
    let before = state.memoryInUse
    try lua(
      """
      for i = 1, 300 do
        local a, b, c, d = vmlab.vm.get("web01"), cp, vmlab.labs(), job
        local e = web.disks[1]
        local _ = tostring(a) .. tostring(e)
      end
      """)
    state.collectGarbage()
    let after = state.memoryInUse
    XCTAssertLessThan(after, before + 16 * 1024, "handles were not released: \(before) -> \(after) bytes")
    XCTAssertEqual(try lua("return web.name, cp.name"), ["web01", "clean"])
  }

  /// A synchronous call waits for the jobs queued on its VM before it: a restore asked for after an
  /// asynchronous checkpoint must not overtake it (the student's work went missing that way).
  func testASynchronousCallKeepsItsPlaceBehindQueuedJobs() throws {
    for round in 1...5 {
      let results = try lua(
        """
        local web = vmlab.vm.create{name="web\(round)", disks={"16M"}, additions=true}
        web:start(); web:write(1, 0, "clean")
        local clean = web:checkpoint("clean")
        web:start(); web:write(1, 0, "STUDENT")
        local job = web:checkpoint{name="work", async=true}
        clean:restore()
        job:wait()
        local now = web:read(1, 0, 7)
        vmlab.checkpoints{vm="web\(round)", name="work"}[1]:restore()
        return job.status, now, web:read(1, 0, 7)
        """)
      XCTAssertEqual(results, ["completed", "clean\0\0", "STUDENT"], "round \(round)")
    }
  }
}
