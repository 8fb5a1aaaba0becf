import Cluster
import Foundation
import TestSupport
import XCTest

/// Lab scripts run unchanged with `--cluster`: the bundled Stdlib scripts over three `vmlab agent`
/// processes with libraries of their own (simulated host), every agent SIGKILLed in teardown.
final class ClusterScriptTests: ClusterTestCase {
  private let hosts = ["h1", "h2", "h3"]

  private func startThreeHosts() throws {
    for host in hosts { try startAgent(host, arguments: ["--offer-memory", "4G", "--offer-disk", "100G"]) }
  }

  private func script(_ arguments: [String]) throws -> CommandResult {
    try clusterCommand(["run"] + arguments)
  }

  private func localVMs(_ host: String) throws -> [String] {
    let listed = try localCommand(host, ["vm", "list", "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let vms = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return vms.compactMap { $0["name"] as? String }.sorted()
  }

  private func checkpointNames(_ host: String, _ vm: String) throws -> [String] {
    let listed = try localCommand(host, ["checkpoint", "list", "--vm", vm, "--json"])
    XCTAssertEqual(listed.status, 0, listed.error)
    let found = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
    return found.compactMap { $0["name"] as? String }
  }

  private func pattern(_ byte: UInt8) throws -> String {
    let path = folder.file("pattern-\(byte).bin")
    try Data(repeating: byte, count: 4096).write(to: URL(fileURLWithPath: path))
    return path
  }

  private func read(_ host: String, _ vm: String) throws -> Data {
    let path = folder.file("read-\(vm).bin")
    let read = try localCommand(host, ["vm", "read", vm, "--offset", "1M", "--length", "4096", "--output", path])
    XCTAssertEqual(read.status, 0, read.error)
    return try Data(contentsOf: URL(fileURLWithPath: path))
  }

  /// Builds the lab of 6 VMs and returns each host's VMs.
  private func buildLab() throws -> [String: [String]] {
    let built = try script(["build-lab.lua", "--vms", "6"])
    XCTAssertEqual(built.status, 0, "\(built.output)\(built.error)")
    XCTAssertTrue(built.output.contains("lab 'classroom' ready"), built.output)
    var byHost: [String: [String]] = [:]
    for host in hosts { byHost[host] = try localVMs(host) }
    return byHost
  }

  func testBuildLabSpreadsTheVMsOverTheHostsAndResetLabRestoresTheBytesOnEveryHost() throws {
    try startThreeHosts()
    let byHost = try buildLab()
    let all = byHost.values.flatMap { $0 }.sorted()
    XCTAssertEqual(all, (1...6).map { String(format: "student%02d", $0) })
    for host in hosts {
      XCTAssertFalse(byHost[host]!.isEmpty, "host \(host) holds none of the lab's VMs: \(byHost)")
      let check = try localCommand(host, ["library", "check"])
      XCTAssertEqual(check.status, 0, "library of \(host): \(check.output)\(check.error)")
      for vm in byHost[host]! { XCTAssertEqual(try checkpointNames(host, vm), ["clean"], "\(vm) on \(host)") }
    }
    let labs = try clusterCommand(["lab", "show", "classroom", "--json"])
    XCTAssertEqual(labs.status, 0, labs.error)
    for vm in all { XCTAssertTrue(labs.output.contains("\"\(vm)\""), labs.output) }

    // Bytes written on each host after `clean` are gone after reset-lab, on every host.
    var before: [String: Data] = [:]
    for host in hosts {
      for vm in byHost[host]! {
        before[vm] = try read(host, vm)
        let written = try localCommand(host, ["vm", "write", vm, "--offset", "1M", "--input", try pattern(0x5A)])
        XCTAssertEqual(written.status, 0, written.error)
        XCTAssertEqual(try read(host, vm), Data(repeating: 0x5A, count: 4096))
      }
    }
    let reset = try script(["reset-lab.lua"])
    XCTAssertEqual(reset.status, 0, "\(reset.output)\(reset.error)")
    XCTAssertTrue(reset.output.contains("lab 'classroom': 6 VMs restored"), reset.output)
    // build-lab leaves its VMs running: each was stopped for the restore and runs again, as a
    // restore on one library says (`turned off`, now `running`), never `was stopped`.
    for vm in all {
      let row = reset.output.split(separator: "\n").first { $0.hasPrefix(vm + " ") }.map(String.init) ?? ""
      XCTAssertTrue(row.contains("turned off") && row.contains("running"), "\(vm):\n\(reset.output)")
    }
    for host in hosts {
      for vm in byHost[host]! { XCTAssertEqual(try read(host, vm), before[vm], "\(vm) on \(host) after reset-lab") }
    }

    // lab-status lists every VM with the host that holds it.
    let status = try script(["lab-status.lua"])
    XCTAssertEqual(status.status, 0, "\(status.output)\(status.error)")
    for host in hosts {
      for vm in byHost[host]! {
        let line = status.output.split(separator: "\n").first { $0.hasPrefix(vm + " ") }
        XCTAssertNotNil(line, "\(vm) missing:\n\(status.output)")
        XCTAssertTrue(line.map { $0.contains(" \(host) ") } ?? false, "\(vm) not shown on \(host):\n\(status.output)")
      }
    }

    // teardown-lab removes the VMs from every library and the lab from the cluster.
    let teardown = try script(["teardown-lab.lua", "classroom"])
    XCTAssertEqual(teardown.status, 0, "\(teardown.output)\(teardown.error)")
    for host in hosts { XCTAssertEqual(try localVMs(host), [], "library of \(host)") }
    let list = try clusterCommand(["lab", "list", "--json"])
    XCTAssertFalse(list.output.contains("classroom"), list.output)
  }

  func testACallThatNeedsTheHostsFilesSaysSoAndNamesTheHost() throws {
    try startThreeHosts()
    let made = try clusterCommand(["vm", "create", "web01", "--disk", "8M", "--memory", "64M", "--host-name", "h2"])
    XCTAssertEqual(made.status, 0, made.error)
    let result = try clusterCommand([
      "run", "-e", "local vm = vmlab.vm.get('web01'); print(vm.clusterHost, vm.state); vm:read(1, 0, 512)",
    ])
    XCTAssertEqual(result.status, 1, result.output)
    XCTAssertEqual(result.output, "h2\tstopped\n")
    XCTAssertTrue(
      result.error.contains(
        "vm:read/vm:write is not available with --cluster: it needs the files of VM 'web01', which are on host h2; run it on host h2 with vmlab --library \(library("h2"))"
      ), result.error)
  }

  func testAScriptWithNoAgentAliveFailsClearly() throws {
    try startAgent("h1")
    agents["h1"]!.stop()
    try waitUntil("h1 is no longer alive", timeout: 20) { try hostStates()["h1"] != "alive" }
    let result = try clusterCommand(["run", "-e", "print(#vmlab.vms())"])
    XCTAssertEqual(result.status, 1, result.output)
    XCTAssertEqual(result.output, "")
    XCTAssertTrue(result.error.contains("no host of cluster"), result.error)
    XCTAssertTrue(result.error.contains("h1: "), result.error)
    XCTAssertTrue(result.error.contains("start their agents (`vmlab agent`)"), result.error)
  }

  func testAScriptOnAClusterWithoutHostsSaysHowToStartOne() throws {
    let result = try clusterCommand(["run", "-e", "print(#vmlab.labs())"])
    XCTAssertEqual(result.status, 1, result.output)
    XCTAssertTrue(result.error.contains("has no hosts: start `vmlab agent --cluster URL --library PATH`"), result.error)
  }

  func testTheReplAndVMLABClusterUseTheClusterToo() throws {
    try startAgent("h1", arguments: ["--offer-memory", "1G", "--offer-disk", "10G"])
    let made = try clusterCommand(["vm", "create", "web01", "--disk", "8M", "--memory", "64M"])
    XCTAssertEqual(made.status, 0, made.error)
    let repl = try vmlab(
      ["repl"], in: folder.path, input: "print(vmlab.vm.get('web01').clusterHost)\n",
      environment: ["VMLAB_CLUSTER": cluster.urlText])
    XCTAssertEqual(repl.status, 0, repl.error)
    XCTAssertEqual(repl.output, "h1\n")
    let local = try vmlab(["run", "-e", "print(#vmlab.vms())", "--library", folder.file("empty")], in: folder.path)
    XCTAssertEqual(local.status, 0, local.error)
    XCTAssertEqual(local.output, "0\n", "without --cluster a script sees its one library")
  }
}
