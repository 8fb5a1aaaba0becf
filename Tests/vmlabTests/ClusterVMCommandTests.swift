import Cluster
import Foundation
import TestSupport
import XCTest

/// The per-VM commands with `--cluster`: each verb run from the client on a VM that host h2's
/// agent holds, its effect read back through the cluster and through h2's own library; wrong
/// arguments, an unknown VM, a dead host and the verbs that need a host's files.
final class ClusterVMCommandTests: ClusterTestCase {
  private func twoHosts() throws {
    for host in ["h1", "h2"] { try startAgent(host, arguments: ["--offer-memory", "2G", "--offer-disk", "10G"]) }
  }

  private func create(_ name: String, on host: String, _ extra: [String] = []) throws {
    let made = try clusterCommand(
      ["vm", "create", name, "--disk", "8M", "--memory", "64M", "--host-name", host] + extra)
    XCTAssertEqual(made.status, 0, made.error)
    XCTAssertTrue(made.output.hasPrefix("created VM \(name) on host \(host)"), made.output)
  }

  /// `vm list --json` of `host`'s own library: each VM's state by name.
  private func localStates(_ host: String) throws -> [String: String] {
    let listed = try localCommand(host, ["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: vms.map { ($0["name"] as! String, $0["state"] as! String) })
  }

  private func localCheckpoints(_ host: String, _ vm: String) throws -> [String] {
    let listed = try localCommand(host, ["checkpoint", "list", "--vm", vm, "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let found = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return found.compactMap { $0["name"] as? String }.sorted()
  }

  /// The VM as `vm show --json --cluster` reads it from its host.
  private func shown(_ vm: String) throws -> [String: Any] {
    let result = try clusterCommand(["vm", "show", vm, "--json"])
    XCTAssertEqual(result.status, 0, result.error)
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
  }

  private func clusterPlacements() throws -> [String: String] {
    let listed = try clusterCommand(["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: vms.map { ($0["name"] as! String, $0["host"] as! String) })
  }

  /// `vm list --json --cluster`: each VM's state as its host's agent published it.
  private func clusterStates() throws -> [String: String] {
    let listed = try clusterCommand(["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return Dictionary(uniqueKeysWithValues: vms.map { ($0["name"] as! String, ($0["state"] as? String) ?? "-") })
  }

  private func jobCount() throws -> Int { try database { db in try await db.jobs(limit: 1000).count } }

  private func expect(
    _ arguments: [String], status: Int32, saying text: String, environment: [String: String] = [:],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let result = try vmlab(arguments, in: folder.path, environment: environment)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output)\(result.error)", file: file, line: line)
    XCTAssertTrue(result.error.contains(text), "\(arguments): \(result.error)", file: file, line: line)
  }

  func testEachPowerVerbRunsOnTheVMsHostAndItsLibrarySaysSo() throws {
    try twoHosts()
    try create("web", on: "h2", ["--additions", "--host-kind", "virtual-server"])
    XCTAssertEqual(try clusterPlacements(), ["web": "h2"])
    let steps: [([String], String, String)] = [
      (["vm", "start", "web"], "web is running on host h2\n", "running"),
      (["vm", "save", "web"], "web is saved on host h2\n", "saved"),
      (["vm", "start", "web"], "web is running on host h2\n", "running"),
      (["vm", "shutdown", "web"], "web is stopped on host h2\n", "stopped"),
      (["vm", "start", "web"], "web is running on host h2\n", "running"),
      (["vm", "turn-off", "web"], "web is stopped on host h2\n", "stopped"),
    ]
    for (arguments, output, state) in steps {
      let result = try clusterCommand(arguments)
      XCTAssertEqual(result.status, 0, "\(arguments): \(result.error)")
      XCTAssertEqual(result.output, output, "\(arguments)")
      // Each host's progress, as the other cluster commands show it.
      XCTAssertTrue(result.error.contains("vmlab: VM web on host h2: done"), result.error)
      XCTAssertEqual(try localStates("h2"), ["web": state], "\(arguments)")
      XCTAssertEqual(try shown("web")["state"] as? String, state, "\(arguments)")
      XCTAssertEqual(try clusterStates(), ["web": state], "\(arguments)")
      XCTAssertEqual(try localStates("h1"), [:])
    }
    // VMLAB_CLUSTER alone, and --cluster after the command, reach the cluster too.
    let fromEnvironment = try vmlab(
      ["vm", "start", "web"], in: folder.path, environment: ["VMLAB_CLUSTER": cluster.urlText])
    XCTAssertEqual(fromEnvironment.status, 0, fromEnvironment.error)
    XCTAssertEqual(fromEnvironment.output, "web is running on host h2\n")
    let after = try vmlab(["vm", "turn-off", "web", "--cluster", cluster.urlText], in: folder.path)
    XCTAssertEqual(after.status, 0, after.error)
    XCTAssertEqual(try localStates("h2"), ["web": "stopped"])

    let show = try clusterCommand(["vm", "show", "web"])
    XCTAssertEqual(show.status, 0, show.error)
    XCTAssertTrue(show.output.hasPrefix("VM web on cluster host h2: stopped, virtual-server"), show.output)
    XCTAssertTrue(show.output.contains("disk 1: \(library("h2"))/vms/web/"), show.output)
    XCTAssertEqual(try shown("web")["clusterHost"] as? String, "h2")

    // What the host's library says of a wrong change is the command's error, with the host named.
    let notRunning = try clusterCommand(["vm", "save", "web"])
    XCTAssertEqual(notRunning.status, 1, notRunning.output)
    XCTAssertTrue(
      notRunning.error.hasSuffix(
        "vmlab: VM web on host h2: failed\nvmlab: error: host h2: VM 'web' is stopped; only a running VM can be saved\n"
      ), notRunning.error)
    let local = try localCommand("h2", ["vm", "save", "web"])
    XCTAssertEqual(local.status, 1)
    // The local command may first say it waits for the agent, which keeps its library open a moment.
    let localError = local.error.split(separator: "\n").last.map(String.init) ?? ""
    XCTAssertTrue(localError.hasPrefix("vmlab: error: "), local.error)
    XCTAssertTrue(
      notRunning.error.contains(localError.replacingOccurrences(of: "vmlab: error: ", with: "")),
      """
      cluster: \(notRunning.error)
      local: \(local.error)
      """)

    let removed = try clusterCommand(["vm", "remove", "web"])
    XCTAssertEqual(removed.status, 0, removed.error)
    XCTAssertEqual(removed.output, "removed VM web from host h2\n")
    XCTAssertEqual(try localStates("h2"), [:])
    XCTAssertEqual(try clusterPlacements(), [:])
    XCTAssertFalse(FileManager.default.fileExists(atPath: library("h2") + "/vms/web"))
  }

  func testSeveralVMsOnTwoHostsStartTogetherAndATypoAmongThemChangesNone() throws {
    try twoHosts()
    try create("a", on: "h1")
    try create("b", on: "h2")
    let typo = try clusterCommand(["vm", "start", "a", "nosuch", "b"])
    XCTAssertEqual(typo.status, 1, typo.output)
    XCTAssertTrue(typo.error.contains("no VM 'nosuch' in cluster"), typo.error)
    XCTAssertEqual(try localStates("h1"), ["a": "stopped"])
    XCTAssertEqual(try localStates("h2"), ["b": "stopped"])

    let both = try clusterCommand(["vm", "start", "a", "b"])
    XCTAssertEqual(both.status, 0, both.error)
    XCTAssertEqual(both.output, "a is running on host h1\nb is running on host h2\n")
    XCTAssertEqual(try localStates("h1"), ["a": "running"])
    XCTAssertEqual(try localStates("h2"), ["b": "running"])
    let twice = try clusterCommand(["vm", "turn-off", "a", "A"])
    XCTAssertEqual(twice.status, 2, twice.output)
    XCTAssertTrue(twice.error.contains("the VM 'a' is named twice"), twice.error)
    XCTAssertEqual(try localStates("h1"), ["a": "running"])
  }

  func testCheckpointVerbsRunOnTheVMsHost() throws {
    try twoHosts()
    try create("db", on: "h2")
    // The simulated guest writes while it runs.
    let started = try clusterCommand(["vm", "start", "db"])
    XCTAssertEqual(started.status, 0, started.error)
    let pattern = folder.file("pattern.bin")
    try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: pattern))
    let written = try localCommand("h2", ["vm", "write", "db", "--offset", "1M", "--input", pattern])
    XCTAssertEqual(written.status, 0, written.error)

    let taken = try clusterCommand(["checkpoint", "new", "db", "clean"])
    XCTAssertEqual(taken.status, 0, taken.error)
    XCTAssertTrue(taken.output.hasPrefix("checkpoint "), taken.output)
    XCTAssertTrue(taken.output.contains("'clean' of db taken ("), taken.output)
    XCTAssertTrue(taken.output.hasSuffix(") on host h2\n"), taken.output)
    XCTAssertEqual(try localCheckpoints("h2", "db"), ["clean"])

    try Data(repeating: 0x77, count: 4096).write(to: URL(fileURLWithPath: pattern))
    let changed = try localCommand("h2", ["vm", "write", "db", "--offset", "1M", "--input", pattern])
    XCTAssertEqual(changed.status, 0, changed.error)

    let listed = try clusterCommand(["checkpoint", "list"])
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertTrue(listed.output.hasPrefix("ID"), listed.output)
    XCTAssertTrue(listed.output.contains("db  h2    clean"), listed.output)

    let restored = try clusterCommand(["checkpoint", "restore", "clean", "--vm", "db"])
    XCTAssertEqual(restored.status, 0, restored.error)
    XCTAssertTrue(restored.output.contains("restored 'clean' ("), restored.output)
    XCTAssertTrue(restored.output.contains(") on host h2"), restored.output)
    let back = folder.file("back.bin")
    let read = try localCommand("h2", ["vm", "read", "db", "--offset", "1M", "--length", "4096", "--output", back])
    XCTAssertEqual(read.status, 0, read.error)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: back)), Data(repeating: 0x41, count: 4096))

    for name in ["second", "third"] {
      let more = try clusterCommand(["checkpoint", "new", "db", "--name", name])
      XCTAssertEqual(more.status, 0, more.error)
    }
    // A merge that takes a later checkpoint along asks first; without a terminal it needs --yes.
    let asked = try clusterCommand(["checkpoint", "merge", "second", "--vm", "db"])
    XCTAssertEqual(asked.status, 2, asked.output)
    XCTAssertTrue(asked.error.contains("later checkpoints on the current line (db: 'third')"), asked.error)
    // --what-if is refused with --cluster, so the way to see the plan names the VM's host.
    XCTAssertTrue(asked.error.contains("run `vmlab checkpoint merge --what-if` on host h2"), asked.error)
    XCTAssertFalse(asked.error.contains("or --what-if to see the plan"), asked.error)
    XCTAssertEqual(try localCheckpoints("h2", "db"), ["clean", "second", "third"])
    let merged = try clusterCommand(["checkpoint", "merge", "second", "--vm", "db", "--yes"])
    XCTAssertEqual(merged.status, 0, merged.error)
    XCTAssertTrue(merged.output.contains("merged 2 checkpoint(s)"), merged.output)
    XCTAssertEqual(try localCheckpoints("h2", "db"), ["clean"])

    // By the id `checkpoint list --cluster` shows.
    let ids = try clusterCommand(["checkpoint", "list", "--vm", "db", "--json"])
    XCTAssertEqual(ids.status, 0, ids.error)
    let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ids.output.utf8)) as? [[String: Any]])
    let id = try XCTUnwrap(entries.first { $0["name"] as? String == "clean" }?["id"] as? Int64)
    let removed = try clusterCommand(["checkpoint", "remove", String(id)])
    XCTAssertEqual(removed.status, 0, removed.error)
    XCTAssertTrue(removed.output.contains("(files on host h2)"), removed.output)
    XCTAssertEqual(try localCheckpoints("h2", "db"), [])

    // Several VMs on two hosts, in parallel; the checkpoint on each host's library.
    try create("web", on: "h1")
    let both = try clusterCommand(["checkpoint", "new", "db", "web", "--name", "both"])
    XCTAssertEqual(both.status, 0, both.error)
    XCTAssertTrue(both.output.contains("checkpoint 'both' taken (turned off, started again) on host h2"), both.output)
    XCTAssertTrue(both.output.contains("checkpoint 'both' taken on host h1"), both.output)
    XCTAssertEqual(try localCheckpoints("h2", "db"), ["both"])
    XCTAssertEqual(try localCheckpoints("h1", "web"), ["both"])
  }

  func testWrongArgumentsAndAnUnknownVMChangeNothing() throws {
    try twoHosts()
    try create("db", on: "h2")
    let before = try jobCount()
    let url = cluster.urlText
    try expect(
      ["--cluster", url, "vm", "start", "nosuch"], status: 1,
      saying:
        "no VM 'nosuch' in cluster \(cluster.url) (searched hosts h1, h2); `vmlab --cluster URL vm list` shows the cluster's VMs"
    )
    try expect(["--cluster", url, "checkpoint", "new", "nosuch", "x"], status: 1, saying: "no VM 'nosuch' in cluster")
    try expect(["--cluster", url, "vm", "start"], status: 2, saying: "Missing expected argument")
    try expect(
      ["--cluster", url, "vm", "start", "db", "--ready-timeout=-1"], status: 2,
      saying: "--ready-timeout cannot be negative")
    try expect(
      ["--cluster", url, "checkpoint", "restore", "clean"], status: 2,
      saying:
        "checkpoint restore of 'clean' on every VM that has it is not available with --cluster: give --vm VM for one VM, or put the VMs in a lab"
    )
    try expect(
      ["--cluster", url, "checkpoint", "restore", "clean", "--vm", "db", "--what-if"], status: 2,
      saying:
        "checkpoint restore --what-if is not available with --cluster: it needs the files of VM 'db', which are on host h2; run it on host h2 with vmlab --library \(library("h2"))"
    )
    try expect(
      ["--cluster", url, "checkpoint", "new", "--lab", "class", "--name", "x", "--async"], status: 2,
      saying: "--async with --lab is not available with --cluster")
    try expect(
      ["--cluster", url, "checkpoint", "new", "db", "--name", "   "], status: 1,
      saying: "checkpoint name '   ' is not allowed")
    try expect(
      ["--cluster", url, "checkpoint", "restore", "nope", "--vm", "db"], status: 1, saying: "no checkpoint 'nope'")
    XCTAssertEqual(try localCheckpoints("h2", "db"), [])
    XCTAssertEqual(try localStates("h2"), ["db": "stopped"])
    // The lookups of a checkpoint by name are describe steps; nothing that changes a VM was queued.
    let kinds = try database { db in try await db.jobs(limit: 1000).map(\.kind) }
    XCTAssertFalse(
      kinds.contains { $0.hasPrefix("script-") && $0 != "script-describe-vms" }, "\(kinds), before \(before)")
  }

  func testAVMOnADeadHostIsRefusedAndNothingIsQueued() throws {
    try twoHosts()
    try create("db", on: "h2")
    agents["h2"]!.stop()
    try waitUntil("h2 is dead") { try hostStates()["h2"] == "dead" }
    let before = try jobCount()
    for arguments in [["vm", "start", "db"], ["vm", "remove", "db"], ["checkpoint", "new", "db", "x"]] {
      let result = try clusterCommand(arguments)
      XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)")
      XCTAssertTrue(
        result.error.contains("VM 'db' is on host h2, which is dead (last heartbeat "), "\(arguments): \(result.error)")
      XCTAssertTrue(result.error.contains("nothing was queued"), result.error)
    }
    XCTAssertEqual(try jobCount(), before, "a job was queued for the dead host")
    XCTAssertEqual(try clusterPlacements(), ["db": "h2"])
    // The listing says what the dead host last published, and that it is only that.
    let table = try clusterCommand(["vm", "list"])
    XCTAssertEqual(table.status, 0, table.error)
    let row = table.output.split(separator: "\n").first { $0.hasPrefix("db ") }.map(String.init) ?? ""
    XCTAssertEqual(
      row.split(separator: " ", omittingEmptySubsequences: true),
      ["db", "stopped", "(last", "known)", "1", "0", "h2", "dead"],
      table.output)
    XCTAssertTrue(table.output.contains("1 VM on hosts that are not alive: db; they wait for their host"), table.output)
    // Listing the checkpoints of every VM lists those of the live hosts and names the others.
    try create("web", on: "h1")
    let taken = try clusterCommand(["checkpoint", "new", "web", "clean"])
    XCTAssertEqual(taken.status, 0, taken.error)
    let listed = try clusterCommand(["checkpoint", "list"])
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertTrue(listed.output.contains("web  h1    clean"), listed.output)
    XCTAssertTrue(
      listed.error.contains("vmlab: not listed, their hosts are not alive: db (host h2, dead)"), listed.error)
  }

  func testVerbsThatNeedTheHostsFilesSayWhereToRunThem() throws {
    try twoHosts()
    try create("db", on: "h2")
    let url = cluster.urlText
    let there = "which are on host h2; run it on host h2 with vmlab --library \(library("h2"))"
    let out = folder.file("out")
    let refused: [([String], String)] = [
      (["vm", "console", "db"], "vm console is not available with --cluster: it needs the files of VM 'db', \(there)"),
      (["vm", "read", "db", "--offset", "0", "--length", "512", "--output", out], "vm read is not available"),
      (["vm", "write", "db", "--offset", "0", "--input", out], "vm write is not available"),
      (["vm", "export", "db", out], "vm export is not available"),
      (["checkpoint", "diff", "clean", "--vm", "db"], "checkpoint diff is not available"),
      (["checkpoint", "export", "clean", "--vm", "db", out], "checkpoint export is not available"),
      (
        ["vm", "import", "new", "--from", out],
        "vm import is not available with --cluster: it copies VHD files of this machine"
      ),
    ]
    for (arguments, message) in refused {
      try expect(["--cluster", url] + arguments, status: 2, saying: message)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    // A command with nothing to do with VMs keeps the general refusal, which lists the ones that work.
    try expect(
      ["--cluster", url, "library", "check", "--library", folder.file("lib")], status: 2,
      saying: "checkpoint new|list|restore|merge|remove")
    // vm exec is the host's step: its agent says what its library says of a simulated guest.
    try expect(
      ["--cluster", url, "vm", "exec", "db", "--", "true"], status: 1,
      saying: "host h2: VM 'db' runs on the host 'simulated', which runs no guest to reach inside")
  }

  func testTheHelpOfEachCommandThatWorksAcrossHostsSaysSo() throws {
    let commands = [
      ["vm", "show"], ["vm", "start"], ["vm", "save"], ["vm", "shutdown"], ["vm", "turn-off"], ["vm", "remove"],
      ["vm", "exec"], ["checkpoint", "new"], ["checkpoint", "list"], ["checkpoint", "restore"],
      ["checkpoint", "merge"], ["checkpoint", "remove"], ["lab", "remove"],
    ]
    for command in commands {
      let help = try vmlab(command + ["--help"], in: folder.path)
      XCTAssertEqual(help.status, 0, "\(command): \(help.error)")
      // Words, whatever the lines the help is wrapped in.
      let words = help.output.split(whereSeparator: \.isWhitespace).joined(separator: " ").lowercased()
      XCTAssertTrue(words.contains("with --cluster"), "\(command): \(help.output)")
      XCTAssertTrue(help.output.contains("--cluster <url>"), "\(command): \(help.output)")
    }
  }

  func testALabIsRemovedFromTheClusterAndItsVMsStay() throws {
    try twoHosts()
    try create("a", on: "h1")
    try create("b", on: "h2")
    let made = try clusterCommand(["lab", "create", "class", "a", "b"])
    XCTAssertEqual(made.status, 0, made.error)
    let removed = try clusterCommand(["lab", "remove", "CLASS"])
    XCTAssertEqual(removed.status, 0, removed.error)
    XCTAssertEqual(removed.output, "removed lab class from the cluster; its VMs stay on their hosts\n")
    let labs = try clusterCommand(["lab", "list"])
    XCTAssertFalse(labs.output.contains("class"), labs.output)
    XCTAssertEqual(try clusterPlacements(), ["a": "h1", "b": "h2"])
    try expect(["--cluster", cluster.urlText, "lab", "remove", "class"], status: 1, saying: "no lab 'class'")
  }
}
