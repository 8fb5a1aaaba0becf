import Foundation
import TestSupport
import XCTest

/// The direct verbs (`vm`, `checkpoint`, `lab`, `job`, `library`) end to end, on a temporary library.
final class EngineCommandTests: LibraryCommandTestCase {

  private func json(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Any {
    let result = try run(arguments + ["--json"], file: file, line: line)
    return try JSONSerialization.jsonObject(with: Data(result.output.utf8))
  }

  func testVMsCheckpointsAndRestoreThroughTheVerbs() throws {
    var result = try run(["vm", "create", "web01", "--disk", "16M", "--disk", "4M", "--additions"])
    XCTAssertTrue(result.output.contains("disk 1: size 16,777,216 bytes rounded up to 16,781,312 bytes"), result.output)
    XCTAssertTrue(result.output.contains("disk 2: size 4,194,304 bytes rounded up to 4,212,736 bytes"), result.output)
    try run(["vm", "create", "web02", "--disk", "16M"])
    let vms = try XCTUnwrap(try json(["vm", "list"]) as? [[String: Any]])
    XCTAssertEqual(vms.compactMap { $0["name"] as? String }, ["web01", "web02"])

    try run(["vm", "start", "web01"])
    result = try run(["checkpoint", "new", "web01", "clean", "--description", "before"])
    XCTAssertTrue(result.output.contains("'clean' of web01 taken (shut down, started again)"), result.output)
    try run(["checkpoint", "new", "web02", "clean"])

    let shown = try XCTUnwrap(try json(["vm", "show", "web01"]) as? [String: Any])
    let disks = try XCTUnwrap(shown["disks"] as? [[String: Any]])
    XCTAssertEqual(disks.count, 2)
    let leaf = try XCTUnwrap(disks[0]["path"] as? String)
    let chain = try XCTUnwrap(disks[0]["chain"] as? [String])
    XCTAssertEqual(chain.first, leaf)
    XCTAssertTrue(chain.last!.hasSuffix("/vms/web01/web01-disk1.vhd"), "\(chain)")
    XCTAssertTrue(FileManager.default.fileExists(atPath: leaf))
    XCTAssertTrue(
      (leaf as NSString).lastPathComponent.range(
        of: #"^web01-disk1_\d{8}-\d{6}-\d{3}_01\.vhd$"#, options: .regularExpression)
        != nil, leaf)

    let recent = try XCTUnwrap(try json(["checkpoint", "list", "--most-recent"]) as? [[String: Any]])
    XCTAssertEqual(recent.compactMap { $0["vm"] as? String }, ["web01", "web02"])

    // A restore over every VM is deliberate: refused without --all, planned with --what-if.
    result = try run(["checkpoint", "restore", "--most-recent"], expect: 2)
    XCTAssertTrue(result.error.contains("--all"), result.error)
    let before = try FileManager.default.contentsOfDirectory(atPath: folder.file("library/vms/web01")).sorted()
    result = try run(["checkpoint", "restore", "--most-recent", "--all", "--what-if"])
    XCTAssertTrue(result.output.contains("would restore on VM web01"), result.output)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: folder.file("library/vms/web01")).sorted(), before)
    result = try run(["checkpoint", "restore", "--most-recent", "--all"])
    XCTAssertTrue(result.output.contains("web02"), result.output)
    result = try run(["checkpoint", "restore", "clean", "--vm", "web01"])
    XCTAssertTrue(result.output.contains("completed"), result.output)

    try run(["checkpoint", "new", "web01", "later"])
    result = try run(["checkpoint", "merge", "clean", "--vm", "web01", "--what-if"])
    XCTAssertTrue(
      result.output.contains("'later'"), "the plan names the later checkpoint that goes too: \(result.output)")
    let diff = try XCTUnwrap(try json(["checkpoint", "diff", "clean", "--vm", "web01"]) as? [[String: Any]])
    XCTAssertEqual(diff.count, 2)
    try run(["checkpoint", "remove", "later", "--vm", "web01"])
    XCTAssertEqual(try XCTUnwrap(try json(["checkpoint", "list", "--vm", "web01"]) as? [[String: Any]]).count, 1)

    result = try run(["checkpoint", "export", "clean", "--vm", "web01", folder.file("exported")])
    XCTAssertTrue(result.output.contains("web01-disk2.vhd"), result.output)
    XCTAssertEqual(try vmlab(["disk", "check", folder.file("exported/web01-disk1.vhd")]).status, 0)

    let jobs = try XCTUnwrap(try json(["job", "list"]) as? [[String: Any]])
    XCTAssertTrue(jobs.contains { $0["kind"] as? String == "restore" && $0["status"] as? String == "completed" })
    try run(["library", "check"])
  }

  func testTheLibraryHostKindAppliesToNewVMs() throws {
    XCTAssertEqual(try run(["library", "host-kind"]).output, "virtual-server\n")
    try run(["library", "host-kind", "hypervisor"])
    try run(["vm", "create", "h1", "--disk", "4M"])
    let shown = try XCTUnwrap(try json(["vm", "show", "h1"]) as? [String: Any])
    XCTAssertEqual(shown["hostKind"] as? String, "hypervisor")
    try run(["library", "host-kind", "bogus"], expect: 2)
  }

  func testLabsCheckpointAndRestoreAsOne() throws {
    for name in ["s1", "s2", "s3"] { try run(["vm", "create", name, "--disk", "8M"]) }
    try run(["lab", "create", "class", "s1", "s2", "s3"])
    var result = try run(["lab", "checkpoint", "class", "clean"])
    XCTAssertEqual(result.output.components(separatedBy: "clean").count - 1, 3, result.output)
    result = try run(["lab", "restore", "class", "nonexistent"], expect: 1)
    XCTAssertTrue(result.error.contains("nonexistent"), result.error)
    result = try run(["lab", "restore", "class", "clean"])
    XCTAssertTrue(result.output.contains("s3"), result.output)
    // One row per VM, its time as printf writes it ("12 ms", or "1.25 s" from a second).
    let rows = result.output.split(separator: "\n").dropFirst()
    XCTAssertEqual(rows.count, 3, result.output)
    for row in rows {
      XCTAssertNotNil(
        row.range(of: #"  (\d+ ms|\d+\.\d\d s)$"#, options: .regularExpression), "\(row) in \(result.output)")
    }
    let shown = try XCTUnwrap(try json(["lab", "show", "class"]) as? [String: Any])
    XCTAssertEqual(shown["checkpoints"] as? [String], ["clean"])
    let labs = try XCTUnwrap(try json(["lab", "list"]) as? [[String: Any]])
    XCTAssertEqual(labs.first?["vms"] as? [String], ["s1", "s2", "s3"])
  }

  /// `checkpoint restore --all` is one journaled operation, as a lab restore: when one VM cannot be
  /// restored, none is.
  func testARestoreOfSeveralVMsIsAllOrNothing() throws {
    for name in ["a", "b"] {
      try run(["vm", "create", name, "--disk", "1M"])
      try run(["checkpoint", "new", name, "clean"])
    }
    let files = { try FileManager.default.contentsOfDirectory(atPath: self.folder.file("library/vms/a")).sorted() }
    let before = try files()
    let frozen = folder.file("library/vms/b/b-disk1.vhd")
    try FileManager.default.moveItem(atPath: frozen, toPath: frozen + ".aside")
    var result = try run(["checkpoint", "restore", "clean", "--all"], expect: 1)
    XCTAssertTrue(result.error.contains("b-disk1.vhd"), result.error)
    XCTAssertEqual(try files(), before, "a was not restored either")
    try FileManager.default.moveItem(atPath: frozen + ".aside", toPath: frozen)
    result = try run(["checkpoint", "restore", "clean", "--all"])
    XCTAssertTrue(result.output.contains("WHAT HAPPENED"), result.output)
    XCTAssertNotEqual(try files(), before, "a has a new leaf")
    try run(["library", "check"])
  }

  /// `checkpoint merge --all` is one engine call that merges every chosen VM; without `--all` the
  /// engine refuses it in the same words a Lua script gets (only the way to confirm differs).
  func testAMergeOfSeveralVMsNeedsAllAndMergesEveryOne() throws {
    for name in ["a", "b"] {
      try run(["vm", "create", name, "--disk", "1M"])
      try run(["checkpoint", "new", name, "clean"])
      try run(["checkpoint", "new", name, "later"])
    }
    let names = {
      try XCTUnwrap(try self.json(["checkpoint", "list"]) as? [[String: Any]]).compactMap { $0["name"] as? String }
    }
    var result = try run(["checkpoint", "merge", "--most-recent"], expect: 2)
    XCTAssertTrue(
      result.error.contains(
        "merge: this would change 2 VMs (a, b); changing several VMs at once must be deliberate: pass --all to do it"),
      result.error)
    XCTAssertEqual(try names(), ["clean", "later", "clean", "later"], "nothing was merged")
    result = try run(["checkpoint", "merge", "--most-recent", "--all"])
    XCTAssertTrue(result.output.contains("merge on VM a:") && result.output.contains("merge on VM b:"), result.output)
    XCTAssertEqual(try names(), ["clean", "clean"])
    try run(["library", "check"])
  }

  func testRepairRebuildsADeletedCatalog() throws {
    try run(["vm", "create", "web01", "--disk", "8M"])
    try run(["checkpoint", "new", "web01", "clean"])
    try run(["lab", "create", "class", "web01"])
    try FileManager.default.removeItem(atPath: folder.file("library/catalog.sqlite"))
    XCTAssertTrue(try run(["vm", "list"]).output.contains("no VMs"))
    let report = try XCTUnwrap(try json(["library", "repair"]) as? [String: Any])
    XCTAssertEqual(report["vms"] as? [String], ["web01"])
    let checkpoints = try XCTUnwrap(try json(["checkpoint", "list"]) as? [[String: Any]])
    XCTAssertEqual(checkpoints.compactMap { $0["name"] as? String }, ["clean"])
    try run(["checkpoint", "restore", "clean", "--vm", "web01"])
    try run(["library", "check"])
    XCTAssertTrue(try run(["lab", "list"]).output.contains("class"))
  }

  func testRepairRecoversAGarbageCatalogAndSaysWhatItCouldNot() throws {
    try run(["vm", "create", "web01", "--disk", "8M"])
    try run(["vm", "create", "db01", "--disk", "8M"])
    try run(["checkpoint", "new", "web01", "clean"])
    let catalog = folder.file("library/catalog.sqlite")
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: catalog))
    handle.write(Data(repeating: 0x5A, count: 8192))
    try handle.close()
    var result = try run(["vm", "list"], expect: 1)
    XCTAssertTrue(result.error.contains("vmlab library repair"), result.error)
    result = try run(["library", "repair"])
    XCTAssertTrue(result.output.contains("rebuilt 2 VM(s), 1 checkpoint(s)"), result.output)
    XCTAssertTrue(result.output.contains("catalog.sqlite.corrupt-"), result.output)
    XCTAssertTrue(try run(["checkpoint", "list"]).output.contains("clean"))
    try run(["library", "check"])
    // A VM file gone: repair keeps the VM, names the file and exits 1.
    try FileManager.default.removeItem(atPath: folder.file("library/vms/db01/db01-disk1.vhd"))
    result = try run(["library", "repair"], expect: 1)
    XCTAssertTrue(result.output.contains("not recovered:") && result.output.contains("db01-disk1.vhd"), result.output)
    XCTAssertTrue(try run(["vm", "list"]).output.contains("db01"))
    result = try run(["library", "check"], expect: 1)
    XCTAssertTrue(result.output.contains("missing file") && result.output.contains("db01-disk1.vhd"), result.output)
  }

  func testBadNamesAndUnknownObjectsFailClearly() throws {
    for name in ["../escape", "/abs", "a/b", "", String(repeating: "x", count: 65), "_under", "a b", ".."] {
      let result = try vmlab(["vm", "create", name, "--disk", "1M"] + library, in: folder.path)
      XCTAssertNotEqual(result.status, 0, "'\(name)' was accepted")
      XCTAssertFalse(result.signaled)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("escape")))
    let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder.file("library/vms"))) ?? []
    XCTAssertEqual(contents, [], "nothing was created for a refused name")
    var result = try run(["vm", "show", "ghost"], expect: 1)
    XCTAssertTrue(result.error.contains("VM 'ghost' not found"), result.error)
    result = try run(["checkpoint", "restore", "clean", "--vm", "ghost"], expect: 1)
    XCTAssertTrue(result.error.contains("ghost"), result.error)
    try run(["vm", "create", "web01", "--disk", "1M"])
    result = try run(["vm", "create", "web01", "--disk", "1M"], expect: 1)
    XCTAssertTrue(result.error.contains("already exists"), result.error)
    result = try run(["vm", "shutdown", "web01"])
    try run(["vm", "start", "web01"])
    XCTAssertEqual(try run(["vm", "save", "web01"]).output, "web01 is saved\n")
    result = try run(["vm", "save", "web01"], expect: 1)
    XCTAssertTrue(result.error.contains("only a running VM can be saved"), result.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("library/vms/web01/saved.vsv")))
    XCTAssertEqual(try run(["vm", "start", "web01"]).output, "web01 is running\n")
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/web01/saved.vsv")))
    result = try run(["vm", "shutdown", "web01"], expect: 1)
    XCTAssertTrue(result.error.contains("no guest additions"), result.error)
    result = try run(["vm", "remove", "web01"], expect: 1)
    XCTAssertTrue(result.error.contains("running"), result.error)
    try run(["vm", "turn-off", "web01"])
    try run(["vm", "remove", "web01"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/web01")))
  }

  func testImportKeepsAForeignChainAndAsksAboutUndoDisks() throws {
    let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/testdata/vhd").path
    guard FileManager.default.fileExists(atPath: shared + "/fat-differential.vhd") else {
      throw XCTSkip("shared test data not found at \(shared)")
    }
    let source = folder.file("windows")
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    for name in ["fat-differential.vhd", "fat-parent.vhd"] {
      try FileManager.default.copyItem(atPath: shared + "/" + name, toPath: source + "/" + name)
    }
    // A differencing disk named like one of vmlab's checkpoints is still a plain chain.
    try FileManager.default.moveItem(
      atPath: source + "/fat-differential.vhd", toPath: source + "/fat-parent_20261126-214702-123_01.vhd")
    try run(["vm", "import", "win", "--from", source])
    XCTAssertEqual(try XCTUnwrap(try json(["checkpoint", "list", "--vm", "win"]) as? [[String: Any]]).count, 0)
    let shown = try XCTUnwrap(try json(["vm", "show", "win"]) as? [String: Any])
    let chain = try XCTUnwrap((shown["disks"] as? [[String: Any]])?.first?["chain"] as? [String])
    XCTAssertEqual(
      chain.map { ($0 as NSString).lastPathComponent }, ["fat-parent_20261126-214702-123_01.vhd", "fat-parent.vhd"])
    XCTAssertTrue(
      chain.allSatisfy { $0.hasPrefix(folder.file("library/vms/win/")) }, "copied into the library: \(chain)")
    let exported = folder.file("out.raw")
    XCTAssertEqual(try vmlab(["disk", "export", chain[0], exported]).status, 0)
    let hash = try runProgram("/usr/bin/sha256sum", [exported]).output
    XCTAssertTrue(hash.hasPrefix("cd39548dad3a9dcaa320b037b80cb4103cf59a894a22520df894174eba4cbe34"), hash)

    try FileManager.default.copyItem(atPath: source + "/fat-parent.vhd", toPath: source + "/changes.vud")
    var result = try run(["vm", "import", "win2", "--from", source], expect: 1)
    XCTAssertTrue(result.error.contains("discard") && result.error.contains("merge"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/win2")))
    try run(["vm", "import", "win2", "--from", source, "--undo-disks", "discard"])

    result = try run(["vm", "export", "win", folder.file("exported")])
    XCTAssertTrue(result.output.contains("fat-parent.vhd"), result.output)
    XCTAssertEqual(
      try vmlab(["disk", "check", folder.file("exported/fat-parent_20261126-214702-123_01.vhd")]).status, 0)
    try run(["vm", "export", "win", folder.file("flat"), "--flatten"])
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("flat/win-disk1.vhd")))
    try run(["library", "check"])
  }

  func testImportDoesNotFollowParentsOutsideItsFolderUnlessAllowed() throws {
    let elsewhere = folder.file("elsewhere")
    let source = folder.file("incoming")
    for path in [elsewhere, source] {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    XCTAssertEqual(try vmlab(["disk", "create", elsewhere + "/secret.vhd", "--size", "4M"]).status, 0)
    XCTAssertEqual(
      try vmlab(["disk", "create", source + "/child.vhd", "--parent", elsewhere + "/secret.vhd"]).status, 0)
    let refused = try run(["vm", "import", "x", "--from", source], expect: 1)
    XCTAssertTrue(refused.error.contains("outside"), refused.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/x")))
    try run(["vm", "import", "x", "--from", source, "--allow-parents-outside"])
    try run(["library", "check"])
  }
}
