import Foundation
import TestSupport
import XCTest

/// The bundled lab scripts, run by name with the built binary on a temporary library, as an
/// instructor runs them; each test checks what they printed and the library afterwards.
final class StdlibTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: String { folder.file("library") }

  override func setUp() {
    folder = TemporaryFolder()
  }

  /// Runs `vmlab run SCRIPT ARGS…` from an unrelated working directory (the scripts are found by name).
  @discardableResult
  private func script(
    _ name: String, _ arguments: [String] = [], expect status: Int32 = 0, file: StaticString = #filePath,
    line: UInt = #line
  ) throws -> CommandResult {
    let result = try vmlab(["run", "--library", library, name] + arguments, in: folder.path)
    XCTAssertFalse(result.signaled, "\(name) crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(
      result.status, status, "\(name) \(arguments): \(result.output)\n\(result.error)", file: file, line: line)
    return result
  }

  private func command(_ arguments: [String]) throws -> CommandResult {
    try vmlab(arguments + ["--library", library], in: folder.path)
  }

  private func libraryIsSound(file: StaticString = #filePath, line: UInt = #line) throws {
    let check = try command(["library", "check"])
    XCTAssertEqual(check.status, 0, "library check: \(check.output)", file: file, line: line)
  }

  func testResetLabBuildsTheDemoLabOnAFreshLibraryThenRestoresIt() throws {
    var result = try script("reset-lab.lua")
    XCTAssertTrue(result.output.contains("building the demo lab 'classroom' (4 VMs) first"), result.output)
    for vm in ["student01", "student02", "student03", "student04"] {
      XCTAssertTrue(result.output.contains(vm), result.output)
    }
    XCTAssertTrue(result.output.contains("4 VMs restored"), result.output)
    try libraryIsSound()
    // The second run finds the lab and only restores.
    result = try script("reset-lab.lua")
    XCTAssertFalse(result.output.contains("building"), result.output)
    XCTAssertTrue(result.output.contains("WHAT HAPPENED"), result.output)
    let checkpoints = try parseJSONArray(try command(["checkpoint", "list", "--json"]).output)
    XCTAssertEqual(checkpoints.count, 4)
    XCTAssertTrue(checkpoints.allSatisfy { $0["name"] as? String == "clean" })
    try libraryIsSound()
  }

  func testResetLabTouchesOnlyTheLabsVMs() throws {
    try script("build-lab.lua", ["--lab", "web", "--vms", "2", "--prefix", "web", "--disks", "8M"])
    XCTAssertEqual(try command(["vm", "create", "other", "--disk", "8M"]).status, 0)
    XCTAssertEqual(try command(["checkpoint", "new", "other", "clean"]).status, 0)
    XCTAssertEqual(try command(["vm", "start", "other"]).status, 0)
    let before = try parseJSON(try command(["vm", "show", "other", "--json"]).output)
    let result = try script("reset-lab.lua", ["--lab", "web"])
    XCTAssertFalse(result.output.contains("other"), result.output)
    let after = try parseJSON(try command(["vm", "show", "other", "--json"]).output)
    XCTAssertEqual(after["state"] as? String, "running")
    XCTAssertEqual(
      ((after["disks"] as? [[String: Any]])?.first?["path"] as? String),
      ((before["disks"] as? [[String: Any]])?.first?["path"] as? String), "the other VM's disks were not restored")
    try script("reset-lab.lua", ["--lab", "nosuchlab"], expect: 1)
  }

  func testBuildLabWithOptionsAndADefinitionFile() throws {
    var result = try script(
      "build-lab.lua", ["--lab", "linked", "--vms", "3", "--prefix", "clone", "--disks", "16M", "--linked"])
    XCTAssertTrue(result.output.contains("ready"), result.output)
    let vms = try parseJSONArray(try command(["vm", "list", "--json"]).output)
    XCTAssertEqual(vms.compactMap { $0["name"] as? String }, ["clone01", "clone02", "clone03"])
    let templates = try FileManager.default.contentsOfDirectory(atPath: library + "/templates")
    XCTAssertEqual(templates.count, 1, "the clones share one template: \(templates)")
    // The lab was checkpointed `clean` by one job, in parallel inside it.
    let jobs = try parseJSONArray(try command(["job", "list", "--json"]).output)
    XCTAssertEqual(jobs.count, 1, "\(jobs)")
    XCTAssertEqual(jobs.first?["kind"] as? String, "lab-checkpoint")
    XCTAssertEqual(jobs.first?["target"] as? String, "linked")
    XCTAssertEqual(jobs.first?["status"] as? String, "completed")
    let checkpoints = try parseJSONArray(try command(["checkpoint", "list", "--json"]).output)
    XCTAssertEqual(checkpoints.compactMap { $0["name"] as? String }, ["clean", "clean", "clean"])

    let definition = folder.file("web.lua")
    try "return { name = \"weblab\", vms = 2, prefix = \"web\", disks = { \"8M\", \"4M\" }, additions = true }"
      .write(toFile: definition, atomically: true, encoding: .utf8)
    result = try script("build-lab.lua", ["--definition", definition])
    let web = try parseJSON(try command(["vm", "show", "web01", "--json"]).output)
    XCTAssertEqual((web["disks"] as? [[String: Any]])?.count, 2)
    XCTAssertEqual(web["additions"] as? Bool, true)
    result = try script("build-lab.lua", ["--definition", definition], expect: 1)
    XCTAssertTrue(result.error.contains("already exists"), result.error)
    try script("build-lab.lua", ["--vms", "lots"], expect: 2)
    try libraryIsSound()
  }

  func testClassroomLoopVerifiesEveryRestore() throws {
    let result = try script("classroom.lua", ["--vms", "3", "--rounds", "2", "--disks", "16M,8M", "--keep"])
    XCTAssertTrue(result.output.contains("round 1:"), result.output)
    XCTAssertTrue(result.output.contains("round 2:"), result.output)
    XCTAssertTrue(result.output.contains("every disk read back its clean contents"), result.output)
    XCTAssertFalse(result.output.contains("FAILED"), result.output)
    let vms = try parseJSONArray(try command(["vm", "list", "--json"]).output)
    XCTAssertEqual(vms.count, 3)
    try libraryIsSound()

    // Status, diff and teardown on the lab it kept.
    var status = try script("lab-status.lua", ["--lab", "classroom-loop"])
    XCTAssertTrue(status.output.contains("clean"), status.output)
    XCTAssertEqual(
      try command(["vm", "write", "classroom-loop-01", "--disk", "1", "--offset", "1M", "--input", makeFile(4096)])
        .status, 0)
    let diff = try script("diff-lab.lua", ["--lab", "classroom-loop", "--ranges"])
    XCTAssertTrue(diff.output.contains("4.0 KiB"), diff.output)
    XCTAssertTrue(diff.output.contains("1048576..1052672"), diff.output)
    var teardown = try script("teardown-lab.lua", ["classroom-loop", "--what-if"])
    XCTAssertTrue(teardown.output.contains("would remove"), teardown.output)
    XCTAssertEqual(
      try parseJSONArray(try command(["vm", "list", "--json"]).output).count, 3, "--what-if changed nothing")
    teardown = try script("teardown-lab.lua", ["--lab", "classroom-loop"])
    XCTAssertEqual(try parseJSONArray(try command(["vm", "list", "--json"]).output).count, 0)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: library + "/vms"), [])
    status = try script("lab-status.lua", ["--lab", "classroom-loop"], expect: 1)
    try libraryIsSound()
  }

  /// What a lab looks like from outside: its VMs' disk paths and checkpoints (any change shows).
  private func snapshot() throws -> String {
    let vms = try command(["vm", "list", "--json"]).output
    let checkpoints = try command(["checkpoint", "list", "--json"]).output
    let labs = try command(["lab", "list"]).output
    let disks = try parseJSONArray(vms).compactMap { $0["name"] as? String }.map {
      try command(["vm", "show", $0, "--json"]).output
    }
    return ([vms, checkpoints, labs] + disks).joined(separator: "\n")
  }

  /// A bare word is the lab (`reset-lab.lua class1` is `--lab class1`), and anything a script does
  /// not understand stops it with its usage before it changes anything.
  func testScriptsTakeTheLabAsABareWordAndStopOnArgumentsTheyDoNotKnow() throws {
    try script("build-lab.lua", ["--vms", "2", "--disks", "8M"])  // the default lab, classroom
    let before = try snapshot()
    // Both removed or reset the classroom lab before: the bare word was ignored.
    var result = try script("teardown-lab.lua", ["linked"], expect: 1)
    XCTAssertTrue(result.error.contains("no lab 'linked'"), result.error)
    result = try script("reset-lab.lua", ["class1"], expect: 1)
    XCTAssertTrue(result.error.contains("no lab 'class1'"), result.error)
    XCTAssertEqual(try snapshot(), before, "a script naming a missing lab changed the library")

    let usageErrors: [(String, [String], String)] = [
      ("teardown-lab.lua", [], "name the lab to remove"),
      ("reset-lab.lua", ["classroom", "extra"], "unexpected argument 'extra'"),
      ("reset-lab.lua", ["--lab", "classroom", "classroom"], "unexpected argument 'classroom'"),
      ("reset-lab.lua", ["--lab", "a", "--lab", "b"], "--lab is given twice"),
      ("reset-lab.lua", ["--checkpoint", "clean", "--most-recent"], "give one"),
      ("teardown-lab.lua", ["classroom", "--what-if=maybe"], "--what-if is a flag"),
      ("teardown-lab.lua", ["classroom", "--force"], "unknown option --force"),
      ("teardown-lab.lua", ["classroom", "-f"], "unknown option -f"),
      ("lab-status.lua", ["classroom", "--all"], "leave out the lab"),
      ("diff-lab.lua", ["--checkpoint"], "--checkpoint needs a value"),
      ("classroom.lua", ["--vms", "2.5"], "--vms takes a whole number, not '2.5'"),
      ("classroom.lua", ["--vms", "0"], "--vms cannot be less than 1"),
      ("classroom.lua", ["--disks", ","], "--disks needs at least one size"),
      ("build-lab.lua", ["web", "--vms", "-3"], "--vms takes a number of VMs from 1 up"),
      ("build-lab.lua", ["web", "--image", "tiny", "--linked"], "--linked and --template do not go with it"),
      ("build-lab.lua", ["web", "--image", "tiny", "--host", "simulated"], "which the simulated host cannot run"),
      (
        "classroom.lua", ["--memory", "256M"],
        "--image, --memory and --accelerator are for real guests: give --host qemu"
      ),
    ]
    for (name, arguments, message) in usageErrors {
      result = try script(name, arguments, expect: 2)
      XCTAssertTrue(result.error.contains(message), "\(name) \(arguments): \(result.error)")
      XCTAssertTrue(result.error.contains("usage: vmlab run \(name)"), "\(name) \(arguments): \(result.error)")
    }
    XCTAssertEqual(try snapshot(), before, "a usage error changed the library")
    // The sandbox has no os.exit: the usage error is an error there (exit 1), still before anything.
    let sandboxed = try vmlab(
      ["run", "--sandbox", "--library", library, "teardown-lab.lua", "--force"], in: folder.path)
    XCTAssertEqual(sandboxed.status, 1, sandboxed.error)
    XCTAssertTrue(sandboxed.error.contains("unknown option --force"), sandboxed.error)
    XCTAssertEqual(try snapshot(), before)

    // The bare word works where --lab does.
    XCTAssertTrue(try script("lab-status.lua", ["classroom"]).output.contains("lab 'classroom': 2 VMs"))
    XCTAssertTrue(try script("reset-lab.lua", ["classroom"]).output.contains("2 VMs restored"))
    XCTAssertTrue(try script("teardown-lab.lua", ["classroom", "--what-if"]).output.contains("would remove"))
    XCTAssertTrue(try script("diff-lab.lua", ["classroom"]).output.contains("student01"))
    try libraryIsSound()
  }

  /// classroom.lua builds a lab of its own: one that exists is somebody's work, removed only with
  /// --replace (and never when another lab shares its VMs).
  func testClassroomNeverRemovesAnExistingLabUnlessToldToReplaceIt() throws {
    try script("build-lab.lua", ["--vms", "2", "--disks", "8M"])
    XCTAssertEqual(try command(["checkpoint", "new", "student01", "homework"]).status, 0)
    let before = try snapshot()
    let loop = ["--lab", "classroom", "--vms", "2", "--rounds", "1", "--disks", "8M", "--keep"]
    let refused = try script("classroom.lua", loop, expect: 1)
    XCTAssertTrue(refused.error.contains("lab 'classroom' already exists (2 VMs)"), refused.error)
    XCTAssertTrue(refused.error.contains("--replace"), refused.error)
    XCTAssertEqual(try snapshot(), before, "classroom.lua changed an existing lab without --replace")

    // A VM another lab also holds keeps the lab from being replaced.
    XCTAssertEqual(try command(["lab", "create", "exam", "student02"]).status, 0)
    let shared = try script("classroom.lua", loop + ["--replace"], expect: 1)
    XCTAssertTrue(shared.error.contains("student02 is also in lab exam"), shared.error)
    XCTAssertEqual(try parseJSONArray(try command(["vm", "list", "--json"]).output).count, 2)

    XCTAssertEqual(try command(["run", "-e", "vmlab.lab.get('exam'):remove()"]).status, 0)
    let replaced = try script("classroom.lua", loop + ["--replace"])
    XCTAssertTrue(replaced.output.contains("--replace: removing lab 'classroom' and its 2 VMs"), replaced.output)
    let names = try parseJSONArray(try command(["vm", "list", "--json"]).output).compactMap { $0["name"] as? String }
    XCTAssertEqual(names, ["classroom-01", "classroom-02"])
    try libraryIsSound()
  }

  /// Building creates only: names in use stop it first, and a failure half way removes what it made.
  func testBuildLabOfAnImageThatIsNotBuiltSaysHowAndLeavesNothing() throws {
    let result = try script("build-lab.lua", ["web", "--vms", "2", "--image", "tiny"], expect: 1)
    XCTAssertTrue(result.error.contains("image 'tiny' not found (no image is built in "), result.error)
    XCTAssertTrue(result.error.contains("run `vmlab image build tiny`"), result.error)
    XCTAssertEqual(try parseJSONArray(try command(["vm", "list", "--json"]).output).count, 0)
    XCTAssertEqual(try parseJSONArray(try command(["lab", "list", "--json"]).output).count, 0)
  }

  func testBuildLabChangesNothingWhenItCannotFinish() throws {
    XCTAssertEqual(try command(["vm", "create", "student02", "--disk", "8M"]).status, 0)
    var result = try script("build-lab.lua", ["--vms", "3", "--disks", "8M"], expect: 1)
    XCTAssertTrue(result.error.contains("student02 already exists"), result.error)
    XCTAssertEqual(try parseJSONArray(try command(["vm", "list", "--json"]).output).count, 1)
    // The VMs are made before the lab, whose name is refused: they go again.
    result = try script("build-lab.lua", ["bad/name", "--vms", "2", "--prefix", "web", "--disks", "8M"], expect: 1)
    XCTAssertTrue(result.error.contains("lab name 'bad/name' is not allowed"), result.error)
    let names = try parseJSONArray(try command(["vm", "list", "--json"]).output).compactMap { $0["name"] as? String }
    XCTAssertEqual(names, ["student02"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: library + "/vms"), ["student02"])
    try libraryIsSound()
  }

  /// The blank template of a linked lab goes to $TMPDIR; a file already there is left alone.
  func testBuildLabLeavesAFileInTheTemplatesPlaceAlone() throws {
    let scratch = folder.file("tmp")
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let mine = scratch + "/web-template.vhd"
    try Data("not a disk, and not vmlab's".utf8).write(to: URL(fileURLWithPath: mine))
    let result = try vmlab(
      ["run", "--library", library, "build-lab.lua", "web", "--vms", "2", "--disks", "8M", "--linked"], in: folder.path,
      environment: ["TMPDIR": scratch])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertEqual(try String(contentsOfFile: mine, encoding: .utf8), "not a disk, and not vmlab's")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), ["web-template.vhd"])
    try libraryIsSound()
  }

  /// Teardown removes the lab, and keeps (and names) a VM another lab also holds.
  func testTeardownKeepsVMsAnotherLabHolds() throws {
    try script("build-lab.lua", ["--vms", "2", "--disks", "8M"])
    XCTAssertEqual(try command(["lab", "create", "exam", "student02"]).status, 0)
    let preview = try script("teardown-lab.lua", ["classroom", "--what-if"])
    XCTAssertTrue(preview.output.contains("keep (also in lab exam)"), preview.output)
    let result = try script("teardown-lab.lua", ["classroom"])
    XCTAssertTrue(result.output.contains("removed lab 'classroom' and 1 of its 2 VMs; 1 VM kept"), result.output)
    let names = try parseJSONArray(try command(["vm", "list", "--json"]).output).compactMap { $0["name"] as? String }
    XCTAssertEqual(names, ["student02"])
    XCTAssertTrue(try script("lab-status.lua", ["exam"]).output.contains("student02"))
    try libraryIsSound()
  }

  private func makeFile(_ count: Int) throws -> String {
    let path = folder.file("data-\(count).bin")
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0xA5, count: count)))
    return path
  }
}

func parseJSONArray(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
  let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
  return try XCTUnwrap(object as? [[String: Any]], "not a JSON array: \(text)", file: file, line: line)
}
