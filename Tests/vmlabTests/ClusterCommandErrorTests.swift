import Foundation
import TestSupport
import XCTest

/// Cluster mode's wrong arguments and unreachable databases: clear messages and exit codes.
final class ClusterCommandErrorTests: ClusterTestCase {
  private func expect(
    _ arguments: [String], status: Int32, saying text: String, environment: [String: String] = [:],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let result = try vmlab(arguments, in: folder.path, environment: environment)
    XCTAssertFalse(result.signaled, result.error, file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output)\(result.error)", file: file, line: line)
    XCTAssertTrue(result.error.contains(text), "\(arguments): \(result.error)", file: file, line: line)
  }

  func testABadURLIsAUsageError() throws {
    try expect(["--cluster", "mysql://lab@db/vmlab", "host", "list"], status: 2, saying: "the scheme is 'mysql'")
    try expect(["host", "list", "--cluster", "postgresql://lab@db"], status: 2, saying: "names no database")
    try expect(["--cluster"], status: 2, saying: "--cluster needs a database URL")
    try expect(
      ["host", "list"], status: 2, saying: "the scheme is 'http'",
      environment: ["VMLAB_CLUSTER": "http://db/vmlab"])
  }

  func testHelpWithAClusterIsTheHelp() throws {
    for arguments in [
      ["--cluster", "postgresql:///vmlab?host=/nonexistent", "--help"],
      ["--cluster", "postgresql:///vmlab?host=/nonexistent"],
    ] {
      let result = try vmlab(arguments, in: folder.path)
      XCTAssertEqual(result.status, 0, "\(arguments): \(result.output)\(result.error)")
      XCTAssertTrue(
        result.output.contains("Many hosts: vmlab --cluster URL host list"), "\(arguments): \(result.output)")
    }
  }

  func testCommandsThatNeedAClusterSaySo() throws {
    try expect(
      ["host", "list"], status: 2, saying: "this needs a cluster: give --cluster URL",
      environment: ["VMLAB_CLUSTER": ""])
    try expect(
      ["job", "list", "--host", "h1", "--library", folder.file("lib")], status: 2,
      saying: "--host lists a cluster's jobs on one host", environment: ["VMLAB_CLUSTER": ""])
  }

  /// A new cluster with no agent yet says how to start one, with every option it needs.
  func testHostListOfANewClusterSaysHowToStartAnAgent() throws {
    let listed = try clusterCommand(["host", "list"])
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertTrue(
      listed.output.contains(
        "no hosts yet: run `vmlab agent --cluster URL --host-name NAME --library PATH` on each host"),
      listed.output)
  }

  func testACommandThatDoesNotWorkAcrossHostsRefusesCluster() throws {
    try expect(
      ["--cluster", cluster.urlText, "library", "check", "--library", folder.file("lib")], status: 2,
      saying: "this command does not work across hosts yet")
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("lib")), "the local library was used")
  }

  /// A user of a cluster who runs a local-only command on a VM of the cluster learns why it is not
  /// found here and where to look, without the local library being mistaken for the cluster.
  func testALocalCommandNotFindingAVMWhileVMLABCLUSTERIsSetSaysWhereToLook() throws {
    let library = folder.file("lib")
    try expect(
      ["vm", "console", "student01", "--library", library], status: 1,
      saying:
        "note: VMLAB_CLUSTER is set, but this command works on this machine's library only (it needs the VM's files); `vmlab vm list --cluster` shows which host holds each VM: run the command there with vmlab --library PATH. These work across hosts: host list, job list, vm create|list|show|start|",
      environment: ["VMLAB_CLUSTER": cluster.urlText])
    let plain = try vmlab(
      ["vm", "console", "student01", "--library", library], in: folder.path, environment: ["VMLAB_CLUSTER": ""])
    XCTAssertEqual(plain.status, 1)
    XCTAssertFalse(plain.error.contains("VMLAB_CLUSTER"), plain.error)
  }

  func testAnUnreachableDatabaseIsAnErrorNamingIt() throws {
    let nowhere = "postgresql:///vmlab?host=\(folder.file("no-server"))"
    try expect(
      ["--cluster", nowhere, "host", "list"], status: 1,
      saying: "cannot reach the cluster database postgresql://")
    try expect(
      ["agent", "--cluster", nowhere, "--host-name", "h1", "--library", folder.file("lib")], status: 1,
      saying: "socket \(folder.file("no-server"))/.s.PGSQL.5432: no such file or directory")
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: folder.file("lib")), "an agent that never connected made a library")
  }

  func testUnknownAndBadHostNames() throws {
    try startAgent("h1")
    try expect(
      ["--cluster", cluster.urlText, "job", "list", "--host", "nosuch"], status: 1,
      saying: "no host 'nosuch' in the cluster")
    try expect(
      ["agent", "--cluster", cluster.urlText, "--host-name", "bad/name", "--library", folder.file("lib")], status: 2,
      saying: "--host-name: host name 'bad/name' is not allowed")
    try expect(
      ["agent", "--cluster", cluster.urlText, "--host-name", "h1", "--library", folder.file("other")], status: 2,
      saying: "host name 'h1' is held by a live agent")
    try expect(
      ["agent", "--cluster", cluster.urlText, "--host-name", "h2", "--lease", "0", "--library", folder.file("lib")],
      status: 2, saying: "--lease must be from")
  }
}
