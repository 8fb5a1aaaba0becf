import Cluster
import Foundation
import TestSupport
import XCTest

/// A `vmlab agent` that reaches the database over TCP with TLS (verify-full against the test
/// server's own CA) runs a step end to end, and one given the wrong CA does not start.
final class ClusterTLSAgentTests: ClusterTestCase {
  func testAnAgentOverTLSRunsAStepEndToEnd() throws {
    let ca = try cluster.tlsCertificateAuthority
    let overTLS = try cluster.tlsURLText(["sslmode": "verify-full", "sslrootcert": ca])
    let agent = try startAgent("h1", url: overTLS)
    XCTAssertFalse(agent.log.contains(":\(URLComponents(string: overTLS)!.password!)@"), "the password is logged")
    let job = try submit(
      "over-tls", [try StepRequest(host: "h1", kind: .createVM, CreateVMStep(name: "web", disks: [8 << 20]))])
    let done = try waitForJob(job)
    XCTAssertEqual(done.state, "done", "\(done.steps)\n\(agent.log)")
    XCTAssertEqual(done.steps[0].result, "created VM 'web' on host simulated")
    let listed = try localCommand("h1", ["vm", "list", "--json"])
    XCTAssertTrue(listed.output.contains("\"web\""), listed.output)
    // `host list` over TLS too, from the command line.
    let hosts = try vmlab(["--cluster", overTLS, "host", "list", "--json"], in: folder.path)
    XCTAssertEqual(hosts.status, 0, hosts.error)
    let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(hosts.output.utf8)) as? [[String: Any]])
    XCTAssertEqual(rows.map { $0["vmCount"] as? Int }, [1], hosts.output)
  }

  func testAnAgentWithTheWrongCADoesNotStartAndSaysWhy() throws {
    let (key, certificate) = (folder.file("other-ca.key"), folder.file("other-ca.crt"))
    let made = try runProgram(
      "/usr/bin/openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=some other CA", "-keyout", key,
        "-out", certificate,
      ])
    XCTAssertEqual(made.status, 0, made.error)
    let url = try cluster.tlsURLText(["sslmode": "verify-full", "sslrootcert": certificate])
    let result = try vmlab(
      ["agent", "--cluster", url, "--host-name", "h1", "--library", library("h1")], in: folder.path)
    XCTAssertEqual(result.status, 1, result.error)
    XCTAssertTrue(result.error.contains("the server's certificate could not be verified"), result.error)
    XCTAssertTrue(result.error.contains(certificate), result.error)
  }
}
