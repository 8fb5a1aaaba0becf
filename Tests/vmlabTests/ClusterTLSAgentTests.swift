import Cluster
import Foundation
import TestSupport
import XCTest

/// A `vmlab agent` that reaches the database over TCP with TLS (verify-full against the test
/// server's own CA) runs a step end to end, and one given the wrong CA does not start; an agent
/// and a client that log in with a client certificate (pg_hba `cert`, no password) work together.
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

  func testAnAgentAndAClientLoggedInByClientCertificateWorkTogether() throws {
    let overCertificate = try cluster.certificateURLText()
    XCTAssertNil(URLComponents(string: overCertificate)?.password)
    let agent = try startAgent("h1", url: overCertificate)
    let created = try vmlab(["--cluster", overCertificate, "vm", "create", "web", "--disk", "8M"], in: folder.path)
    XCTAssertEqual(created.status, 0, "\(created.error)\n\(agent.log)")
    XCTAssertTrue(created.output.contains("created VM web on host h1"), created.output)
    let hosts = try vmlab(["--cluster", overCertificate, "host", "list", "--json"], in: folder.path)
    XCTAssertEqual(hosts.status, 0, hosts.error)
    let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(hosts.output.utf8)) as? [[String: Any]])
    XCTAssertEqual(rows.map { $0["name"] as? String }, ["h1"], hosts.output)
    XCTAssertEqual(rows.map { $0["state"] as? String }, ["alive"], hosts.output)
    XCTAssertEqual(rows.map { $0["vmCount"] as? Int }, [1], hosts.output)
    let listed = try localCommand("h1", ["vm", "list", "--json"])
    XCTAssertTrue(listed.output.contains("\"web\""), "the VM is in h1's library: \(listed.output)")
  }

  func testAnAgentWithAKeyOthersCanReadDoesNotStartAndSaysHowToFixIt() throws {
    let key = folder.file("loose.key")
    try FileManager.default.copyItem(atPath: try cluster.clientCertificateFiles.key, toPath: key)
    chmod(key, 0o644)
    let url = try cluster.certificateURLText(["sslkey": key])
    let result = try vmlab(
      ["agent", "--cluster", url, "--host-name", "h1", "--library", library("h1")], in: folder.path)
    XCTAssertEqual(result.status, 2, result.error)
    XCTAssertTrue(result.error.contains("sslkey '\(key)' has group or world access (mode 0644)"), result.error)
    XCTAssertTrue(result.error.contains("chmod 600 '\(key)'"), result.error)
  }

  func testCertificateAndKeyFilesVmlabCannotReadAreUsageErrorsNamingThem() throws {
    // Root reads every file, so as root the command runs as nobody, who cannot read these.
    let files = try cluster.clientCertificateFiles
    let (certificate, key) = (folder.file("locked.crt"), folder.file("locked.key"))
    try FileManager.default.copyItem(atPath: files.certificate, toPath: certificate)
    try FileManager.default.copyItem(atPath: files.key, toPath: key)
    chmod(folder.path, 0o755)
    for (changes, file, parameter) in [
      (["sslcert": certificate], certificate, "sslcert"), (["sslkey": key], key, "sslkey"),
    ] as [([String: String?], String, String)] {
      chmod(file, 0o000)
      let arguments = ["--cluster", try cluster.certificateURLText(changes), "host", "list"]
      let binary = try VMLabBinary.path
      let result =
        geteuid() == 0
        ? try runProgram(
          "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", binary] + arguments,
          in: folder.path)
        : try vmlab(arguments, in: folder.path)
      XCTAssertEqual(result.status, 2, result.error)
      XCTAssertTrue(result.error.contains("\(parameter) '\(file)' cannot be read (permission denied)"), result.error)
    }
  }

  func testARootOwnedKeyMayBeReadByItsGroupAndNoFurtherAsLibpqAllows() throws {
    guard geteuid() == 0 else { throw XCTSkip("a key owned by root, used by another user, needs root to set up") }
    // The command runs as nobody in group nogroup (65534), and the key is root's.
    let key = folder.file("shared.key")
    try FileManager.default.copyItem(atPath: try cluster.clientCertificateFiles.key, toPath: key)
    XCTAssertEqual(chown(key, 0, 65534), 0)
    chmod(folder.path, 0o755)
    let url = try cluster.certificateURLText(["sslkey": key])
    func asNobody() throws -> CommandResult {
      try runProgram(
        "/usr/bin/setpriv",
        [
          "--reuid=65534", "--regid=65534", "--clear-groups", "--", try VMLabBinary.path, "--cluster", url, "host",
          "list",
        ],
        in: folder.path)
    }
    chmod(key, 0o640)
    let shared = try asNobody()
    XCTAssertEqual(shared.status, 0, "a root-owned key its group may read is taken: \(shared.error)")
    chmod(key, 0o644)
    let open = try asNobody()
    XCTAssertEqual(open.status, 2, open.error)
    XCTAssertTrue(open.error.contains("sslkey '\(key)' is owned by root with mode 0644"), open.error)
    XCTAssertTrue(open.error.contains("run `chmod 640 '\(key)'`"), open.error)
  }
}
