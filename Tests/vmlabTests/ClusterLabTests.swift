import Cluster
import Foundation
import TestSupport
import XCTest

/// A `vmlab --cluster … lab checkpoint/restore` run in the background (to kill it, or to race
/// another); its output in files. `stop()` kills it whatever it is doing; teardown calls it.
final class CommandProcess {
  let process = Process()
  let outputPath: String
  let errorPath: String

  init(_ arguments: [String], folder: TemporaryFolder, name: String) throws {
    outputPath = folder.file("\(name).out")
    errorPath = folder.file("\(name).err")
    for path in [outputPath, errorPath] { FileManager.default.createFile(atPath: path, contents: nil) }
    process.executableURL = URL(fileURLWithPath: try VMLabBinary.path)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    process.standardInput = FileHandle.nullDevice
    try process.run()
  }

  var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
  var error: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

  /// Waits for it to end within `timeout` seconds and returns its exit status (nil: still running).
  func wait(timeout: Double = 60) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    return process.isRunning ? nil : process.terminationStatus
  }

  func stop() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    _ = wait(timeout: 10)
  }
}

/// Labs spread over three agents (separate processes and libraries, simulated host): what the
/// cluster's `lab` commands do, and what stays true when hosts, the coordinator or the database fail.
class ClusterLabTestCase: ClusterTestCase {
  let hosts = ["h1", "h2", "h3"]
  var commands: [CommandProcess] = []

  override func tearDown() {
    for command in commands { command.stop() }
    super.tearDown()
  }

  /// Starts a background `vmlab --cluster URL …`.
  func background(_ arguments: [String], name: String) throws -> CommandProcess {
    let command = try CommandProcess(["--cluster", cluster.urlText] + arguments, folder: folder, name: name)
    commands.append(command)
    return command
  }

  /// Three agents, two VMs on each (`h1-a`, `h1-b`, …), and lab `class` of all six. `slow` hosts
  /// wait `slowSeconds` in each prepare step (the agent's fault hook), so that a test can act while
  /// they prepare; with `running` every VM runs.
  func makeLab(slow: Set<String> = [], slowSeconds: Double = 3, running: Bool = false) throws {
    for host in hosts {
      try startAgent(
        host, environment: slow.contains(host) ? ["VMLAB_AGENT_PREPARE_DELAY_SECONDS": String(slowSeconds)] : [:])
    }
    var steps: [StepRequest] = []
    for host in hosts {
      for vm in vms(host) {
        steps.append(
          try StepRequest(
            host: host, kind: .createVM,
            CreateVMStep(name: vm, disks: [8 << 20], hostKind: "virtual-server", additions: true)))
      }
      if running { steps.append(try StepRequest(host: host, kind: .startVMs, VMsStep(vms: vms(host)))) }
    }
    let built = try waitForJob(try submit("build", steps))
    XCTAssertEqual(built.state, "done", "\(built.steps)")
    let created = try clusterCommand(["lab", "create", "class"] + hosts.flatMap(vms))
    XCTAssertEqual(created.status, 0, created.error)
    XCTAssertEqual(created.output, "lab class: h1: h1-a, h1-b; h2: h2-a, h2-b; h3: h3-a, h3-b\n")
  }

  func vms(_ host: String) -> [String] { ["\(host)-a", "\(host)-b"] }

  /// The names of a VM's checkpoints, read from its host's library.
  func checkpointNames(_ host: String, _ vm: String, file: StaticString = #filePath, line: UInt = #line) throws
    -> [String]
  {
    let list = try localCommand(host, ["checkpoint", "list", "--vm", vm, "--json"])
    XCTAssertEqual(list.status, 0, list.error, file: file, line: line)
    let checkpoints = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]], file: file, line: line)
    return checkpoints.compactMap { $0["name"] as? String }
  }

  /// Every library checks clean: nothing half done, nothing waiting for a decision.
  func assertLibrariesClean(file: StaticString = #filePath, line: UInt = #line) throws {
    for host in hosts {
      let check = try localCommand(host, ["library", "check"])
      XCTAssertEqual(check.status, 0, "\(host): \(check.output)\(check.error)", file: file, line: line)
    }
  }

  /// Every VM of the lab has exactly the checkpoints `names`.
  func assertCheckpoints(_ names: [String], file: StaticString = #filePath, line: UInt = #line) throws {
    for host in hosts {
      for vm in vms(host) {
        XCTAssertEqual(try checkpointNames(host, vm, file: file, line: line), names, vm, file: file, line: line)
      }
    }
  }

  /// The lab's open operation as the database holds it.
  func openOperation() throws -> LabOperationStatus? {
    try database { db in try await db.lab(named: "class").operation }
  }

  func hostPart(_ host: String) throws -> LabOperationStatus.HostPart? {
    try openOperation()?.hosts.first { $0.host == host }
  }
}

final class ClusterLabTests: ClusterLabTestCase {
  private func pattern(_ byte: UInt8) throws -> String {
    let path = folder.file("pattern-\(byte).bin")
    try Data(repeating: byte, count: 4096).write(to: URL(fileURLWithPath: path))
    return path
  }

  private func write(_ byte: UInt8, into host: String, _ vm: String) throws {
    let written = try localCommand(host, ["vm", "write", vm, "--offset", "1M", "--input", try pattern(byte)])
    XCTAssertEqual(written.status, 0, written.error)
  }

  private func read(_ host: String, _ vm: String) throws -> Data {
    let path = folder.file("read-\(vm).bin")
    let read = try localCommand(host, ["vm", "read", vm, "--offset", "1M", "--length", "4096", "--output", path])
    XCTAssertEqual(read.status, 0, read.error)
    return try Data(contentsOf: URL(fileURLWithPath: path))
  }

  func testALabOverThreeHostsIsCheckpointedAndRestoredWhole() throws {
    try makeLab(running: true)
    for host in hosts { for vm in vms(host) { try write(0xA5, into: host, vm) } }
    let checkpoint = try clusterCommand(["lab", "checkpoint", "class", "clean", "--description", "the first lesson"])
    XCTAssertEqual(checkpoint.status, 0, checkpoint.error)
    XCTAssertTrue(
      checkpoint.output.contains("checkpoint 'clean'") && checkpoint.output.contains("committed on 3 hosts"),
      checkpoint.output)
    for host in hosts { XCTAssertTrue(checkpoint.error.contains("\(host): commit done"), checkpoint.error) }
    try assertCheckpoints(["clean"])

    // The students change every disk; the restore brings back the bytes of the checkpoint.
    for host in hosts { for vm in vms(host) { try write(0x3C, into: host, vm) } }
    XCTAssertEqual(try read("h2", "h2-b"), Data(repeating: 0x3C, count: 4096))
    let restore = try clusterCommand(["lab", "restore", "class", "clean", "--json"])
    XCTAssertEqual(restore.status, 0, restore.error)
    let result = try parseJSON(restore.output)
    XCTAssertEqual(result["decision"] as? String, "commit")
    XCTAssertEqual(
      (result["hosts"] as? [[String: Any]])?.compactMap { $0["decideState"] as? String }, ["done", "done", "done"])
    for host in hosts {
      for vm in vms(host) { XCTAssertEqual(try read(host, vm), Data(repeating: 0xA5, count: 4096), vm) }
    }
    let mostRecent = try clusterCommand(["lab", "restore", "class", "--most-recent"])
    XCTAssertEqual(mostRecent.status, 0, mostRecent.error)
    try assertLibrariesClean()
    XCTAssertNil(try openOperation(), "the operation is closed")

    let shown = try clusterCommand(["lab", "show", "class"])
    XCTAssertEqual(shown.status, 0, shown.error)
    XCTAssertTrue(shown.output.contains("lab class, 6 VMs on 3 hosts"), shown.output)
    XCTAssertTrue(shown.output.contains("h3-b  h3    alive"), shown.output)
    let listed = try clusterCommand(["lab", "list"])
    XCTAssertTrue(listed.output.contains("class  6    h1 2, h2 2, h3 2"), listed.output)
    let jobs = try clusterCommand(["job", "list"])
    XCTAssertTrue(jobs.output.contains("lab-checkpoint-prepare") && jobs.output.contains("lab-commit"), jobs.output)
  }

  func testAHostKilledBeforeItPreparedRollsBackEveryHost() throws {
    try makeLab()
    agents["h2"]!.signal(SIGKILL)
    XCTAssertTrue(agents["h2"]!.waitForExit())
    let checkpoint = try clusterCommand(["lab", "checkpoint", "class", "clean"])
    XCTAssertEqual(checkpoint.status, 1, checkpoint.output)
    XCTAssertTrue(checkpoint.error.contains("lab 'class' was not checkpointed"), checkpoint.error)
    XCTAssertTrue(checkpoint.error.contains("host h2 is dead"), checkpoint.error)
    // Whether the kill was seen before the operation began (nothing started) or during its
    // prepare phase (rolled back on h1 and h3), nothing of it remains anywhere.
    try startAgent("h2")
    try assertLibrariesClean()
    try assertCheckpoints([])
    XCTAssertNil(try openOperation())
    let again = try clusterCommand(["lab", "checkpoint", "class", "clean"])
    XCTAssertEqual(again.status, 0, again.error)
    try assertCheckpoints(["clean"])
  }

  func testAHostKilledWhileItPreparesRollsBackTheOthersAndItsOwnPartWhenItComesBack() throws {
    // h3 waits 3 s in its prepare step; its agent is killed during that wait.
    try makeLab(slow: ["h3"])
    let checkpoint = try background(["lab", "checkpoint", "class", "clean"], name: "checkpoint")
    try waitUntil("h3 preparing, the others prepared") {
      let operation = try openOperation()
      return operation?.hosts.map { $0.prepareState ?? "" } == ["done", "done", "running"]
    }
    agents["h3"]!.signal(SIGKILL)
    XCTAssertEqual(checkpoint.wait(), 1, checkpoint.output)
    XCTAssertTrue(checkpoint.error.contains("lab 'class' was not checkpointed"), checkpoint.error)
    XCTAssertTrue(
      checkpoint.error.contains("host h3 is dead (its agent stopped answering) and had not prepared"), checkpoint.error)
    // h3 may have prepared before it died: it owes the roll-back, which its agent carries out.
    XCTAssertTrue(checkpoint.error.contains("host h3 (dead) still owes the roll-back"), checkpoint.error)
    XCTAssertTrue(
      checkpoint.error.contains("h1: roll-back done") && checkpoint.error.contains("h2: roll-back done"),
      checkpoint.error)
    for host in ["h1", "h2"] { for vm in vms(host) { XCTAssertEqual(try checkpointNames(host, vm), []) } }
    let shown = try clusterCommand(["lab", "show", "class"])
    XCTAssertTrue(shown.output.contains("decided (roll-back), owed by h3"), shown.output)
    try startAgent("h3")
    try waitUntil("h3 carried out the roll-back", timeout: 60) { try hostPart("h3")?.decideState == "done" }
    // The killed attempt's lease runs out; its step is not tried again after the decision.
    try waitUntil("h3's prepare step ended") { try hostPart("h3")?.prepareState == "failed" }
    XCTAssertTrue(try hostPart("h3")?.prepareError?.contains("lease ran out") == true)
    try assertLibrariesClean()
    try assertCheckpoints([])
    let again = try clusterCommand(["lab", "checkpoint", "class", "clean"])
    XCTAssertEqual(again.status, 0, again.error)
    try assertCheckpoints(["clean"])
  }

  func testAHostThatDoesNotPrepareWithinTheTimeoutRollsBackEveryHost() throws {
    // h1 takes 3 s to prepare; the command gives every host 1 s.
    try makeLab(slow: ["h1"])
    let checkpoint = try clusterCommand(["lab", "checkpoint", "class", "clean", "--timeout", "1", "--json"])
    XCTAssertEqual(checkpoint.status, 1, checkpoint.output)
    XCTAssertTrue(
      checkpoint.error.contains("lab 'class' was not checkpointed (rolled back on every host, as it was)"),
      checkpoint.error)
    XCTAssertTrue(
      checkpoint.error.contains("host h1 did not prepare within 1.0 s (its step is running; see --timeout)"),
      checkpoint.error)
    // h1 was still preparing: its roll-back step followed its prepare step, and the command waited
    // for it, as h1 is alive.
    let operation = try parseJSON(checkpoint.output)
    XCTAssertEqual(operation["decision"] as? String, "roll-back")
    XCTAssertEqual(
      (operation["hosts"] as? [[String: Any]])?.compactMap { $0["decideState"] as? String }, ["done", "done", "done"])
    try assertCheckpoints([])
    try assertLibrariesClean()
    XCTAssertNil(try openOperation())
  }

  func testAHostPausedAfterItPreparedCarriesOutTheCommitWhenItComesBack() throws {
    // h1 and h3 take 3 s to prepare; h2 is fast and is paused once its prepare step is done.
    try makeLab(slow: ["h1", "h3"])
    let checkpoint = try background(["lab", "checkpoint", "class", "clean"], name: "checkpoint")
    try waitUntil("h2 prepared") { try hostPart("h2")?.prepareState == "done" }
    agents["h2"]!.signal(SIGSTOP)
    XCTAssertEqual(checkpoint.wait(), 1, checkpoint.output)
    XCTAssertTrue(checkpoint.error.contains("host h2 (dead) still owes the commit"), checkpoint.error)
    XCTAssertTrue(
      checkpoint.error.contains("runs when its agent comes back")
        || checkpoint.error.contains("carries it out when it comes back"), checkpoint.error)
    let shown = try clusterCommand(["lab", "show", "class"])
    XCTAssertTrue(shown.output.contains("decided (commit), owed by h2"), shown.output)
    XCTAssertTrue(shown.output.contains("queued (owed)"), shown.output)
    let busy = try clusterCommand(["lab", "restore", "class", "clean"])
    XCTAssertEqual(busy.status, 1)
    XCTAssertTrue(busy.error.contains("lab 'class' is busy") && busy.error.contains("waits for host h2"), busy.error)
    for vm in vms("h1") { XCTAssertEqual(try checkpointNames("h1", vm), ["clean"]) }

    agents["h2"]!.signal(SIGCONT)
    try waitUntil("h2 carried out the commit") { try hostPart("h2")?.decideState == "done" }
    try assertCheckpoints(["clean"])
    try assertLibrariesClean()
    let settled = try clusterCommand(["lab", "show", "class"])
    XCTAssertFalse(settled.output.contains("open operation"), "carried out everywhere, it is closed: \(settled.output)")
    XCTAssertNil(try openOperation())
    let restore = try clusterCommand(["lab", "restore", "class", "clean"])
    XCTAssertEqual(restore.status, 0, restore.error)
  }

  func testWrongLabCommandsSayWhatIsWrongAndChangeNothing() throws {
    let agent = try startAgent("h1")
    let built = try waitForJob(
      try submit("build", [try StepRequest(host: "h1", kind: .createVM, CreateVMStep(name: "web", disks: [8 << 20]))]))
    XCTAssertEqual(built.state, "done")
    let checks: [(arguments: [String], status: Int32, message: String)] = [
      (["lab", "create", "class", "web", "nowhere"], 1, "no host holds VM 'nowhere'"),
      (["lab", "create", "../x", "web"], 2, "lab name '../x' is not allowed"),
      (["lab", "show", "nope"], 1, "no lab 'nope'"),
      (["lab", "checkpoint", "nope", "clean"], 1, "no lab 'nope'"),
      (
        ["lab", "checkpoint", "nope", "clean", "--timeout", "0"], 2, "--timeout must be a number of seconds more than 0"
      ),
      (["lab", "checkpoint", "nope", " "], 2, "checkpoint name"),
    ]
    for check in checks {
      let result = try clusterCommand(check.arguments)
      XCTAssertEqual(result.status, check.status, "\(check.arguments): \(result.error)")
      XCTAssertTrue(result.error.contains(check.message), "\(check.arguments): \(result.error)")
    }
    // The local lab commands refuse the options that only mean something across hosts.
    for arguments in [
      ["lab", "checkpoint", "class", "clean", "--description", "x"],
      ["lab", "restore", "class", "--most-recent", "--timeout", "5"],
    ] {
      let local = try vmlab(arguments + ["--library", folder.file("local")], in: folder.path)
      XCTAssertEqual(local.status, 2, local.error)
      XCTAssertTrue(local.error.contains("give --cluster URL"), local.error)
    }
    let listed = try clusterCommand(["lab", "list"])
    XCTAssertTrue(listed.output.contains("no labs in the cluster"), listed.output)

    // A lab whose host is stopped: refused before anything starts, naming the host.
    let created = try clusterCommand(["lab", "create", "class", "web"])
    XCTAssertEqual(created.status, 0, created.error)
    agent.signal(SIGTERM)
    XCTAssertTrue(agent.waitForExit())
    let checkpoint = try clusterCommand(["lab", "checkpoint", "class", "clean"])
    XCTAssertEqual(checkpoint.status, 1)
    XCTAssertTrue(
      checkpoint.error.contains(
        "lab 'class' was not checkpointed: host h1 is stopped (it holds web); nothing was done on any host"),
      checkpoint.error)
    XCTAssertNil(try openOperation())
    XCTAssertEqual(try job(built.id).steps.count, 1, "nothing was queued")
    let jobs = try clusterCommand(["job", "list", "--json"])
    XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(jobs.output.utf8)) as? [Any])?.count, 1, jobs.output)
  }
}
