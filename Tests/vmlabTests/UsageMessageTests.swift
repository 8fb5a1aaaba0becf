import Foundation
import TestSupport
import XCTest

/// What a new user's mistakes get: an error that names the object and the flag that helps, the
/// right exit code, and nothing lost.
final class UsageMessageTests: LibraryCommandTestCase {

  func testReadLengthsAreCheckedAgainstTheDiskAndALimit() throws {
    try run(["vm", "create", "web01", "--disk", "8M", "--disk", "128M"])
    let output = folder.file("kept.bin")
    XCTAssertTrue(FileManager.default.createFile(atPath: output, contents: Data("keep me".utf8)))
    var result = try run(["vm", "read", "web01", "--length", "1T", "--output", output], expect: 1)
    XCTAssertTrue(result.error.contains("VM 'web01' disk 1"), result.error)
    // 8M rounds up to a whole CHS geometry: 8,390,656 bytes.
    XCTAssertTrue(result.error.contains("the disk is 8390656 bytes"), result.error)
    XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "keep me", "a failed read replaces nothing")
    result = try run(["vm", "read", "web01", "--offset", "8390656", "--length", "1", "--output", output], expect: 1)
    XCTAssertTrue(result.error.contains("read within it"), result.error)

    // The command line streams, so a read larger than one engine call still works.
    try run(["vm", "read", "web01", "--disk", "2", "--length", "100M", "--output", output])
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int, 100 << 20)

    // Lua, even in the sandbox: a catchable error, not an abort.
    let script = """
      local vm = vmlab.vm.get('web01')
      print(pcall(vm.read, vm, 1, 0, 1e12))
      print(pcall(vm.read, vm, 2, 0, 100 * 1048576))
      print(#vm:read(2, 0, 4096))
      """
    result = try run(["run", "--sandbox", "-e", script])
    let lines = result.output.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 3, result.output)
    XCTAssertTrue(lines[0].hasPrefix("false") && lines[0].contains("the disk is 8390656 bytes"), lines[0])
    XCTAssertTrue(lines[1].hasPrefix("false") && lines[1].contains("the limit is 67108864 bytes"), lines[1])
    XCTAssertEqual(lines[2], "4096")
  }

  func testAMissingFolderIsSaidInWords() throws {
    var result = try run(["vm", "import", "x", "--from", folder.file("nowhere")], expect: 1)
    XCTAssertTrue(result.error.contains("\(folder.file("nowhere")) does not exist"), result.error)
    XCTAssertFalse(result.error.contains("NSCocoaErrorDomain"), result.error)
    XCTAssertTrue(FileManager.default.createFile(atPath: folder.file("afile"), contents: Data()))
    result = try run(["vm", "import", "x", "--from", folder.file("afile")], expect: 1)
    XCTAssertTrue(result.error.contains("is a file, not a folder"), result.error)
  }

  func testImportErrorsNameTheFlagThatResolvesThem() throws {
    let source = folder.file("incoming")
    let elsewhere = folder.file("elsewhere")
    for path in [source, elsewhere] {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    XCTAssertEqual(try vmlab(["disk", "create", elsewhere + "/parent.vhd", "--size", "1M"]).status, 0)
    XCTAssertEqual(
      try vmlab(["disk", "create", source + "/child.vhd", "--parent", elsewhere + "/parent.vhd"]).status, 0)
    var result = try run(["vm", "import", "x", "--from", source], expect: 1)
    XCTAssertTrue(result.error.contains("--allow-parents-outside"), result.error)
    try FileManager.default.copyItem(atPath: source + "/child.vhd", toPath: source + "/changes.vud")
    result = try run(["vm", "import", "x", "--from", source], expect: 1)
    XCTAssertTrue(
      result.error.contains("--undo-disks discard") && result.error.contains("--undo-disks merge"), result.error)
  }

  func testADashNameIsAUsageErrorNotHelp() throws {
    let result = try run(["vm", "create", "-dash", "--disk", "1M"], expect: 2)
    XCTAssertTrue(result.error.contains("'-dash' is not an option"), result.error)
    XCTAssertEqual(result.output, "", "no help on standard output")
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/-dash")))
    // A negative number is left to the option that takes it.
    let negative = try run(["vm", "write", "x", "--offset", "-10", "--input", "f"], expect: 2)
    XCTAssertFalse(negative.error.contains("is not an option"), negative.error)
    // Help still works, and `run` passes dashes on to its script.
    XCTAssertEqual(try run(["vm", "create", "-h"]).status, 0)
    XCTAssertEqual(try run(["run", "-e", "print(arg[1])", "-", "-xyz"], expect: 0).status, 0)
  }

  func testHelpShowsDefaultsAsTheyAreTyped() throws {
    let help = try run(["vm", "write", "--help"]).output
    XCTAssertTrue(help.contains("(default: 0)"), help)
    XCTAssertFalse(help.contains("SizeArgument"), help)
    for command in [["disk", "create"], ["disk", "import"], ["checkpoint", "export"]] {
      // Help wraps its lines: compare with the words joined by single spaces.
      let text = try run(command + ["--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
      XCTAssertTrue(text.contains("default: dynamic"), text)
      XCTAssertFalse(text.contains("default: 3"), text)
    }
  }

  func testAnErrorFoundWhileRunningPointsAtItsCommandsHelp() throws {
    let result = try run(["checkpoint", "remove", "c1"], expect: 2)
    XCTAssertTrue(result.error.contains("Error: give --vm with the checkpoint's name 'c1', or its id"), result.error)
    XCTAssertTrue(result.error.contains("See 'vmlab checkpoint remove --help'."), result.error)
    XCTAssertFalse(result.error.contains("<subcommand>"), result.error)
  }

  func testABulkRestoreCountsTheVMsItWouldTouch() throws {
    for name in ["a", "b", "c"] { try run(["vm", "create", name, "--disk", "1M"]) }
    try run(["checkpoint", "new", "a", "c1"])
    try run(["checkpoint", "new", "b", "c1"])
    var result = try run(["checkpoint", "restore", "c1"], expect: 2)
    XCTAssertTrue(result.error.contains("restore: this would change 2 VMs (a, b)"), result.error)
    XCTAssertTrue(result.error.contains("--all"), result.error)
    // One VM has it: still library-wide, so still deliberate, and counted against the library.
    try run(["checkpoint", "new", "c", "only-c"])
    result = try run(["checkpoint", "restore", "only-c"], expect: 2)
    XCTAssertTrue(result.error.contains("restore 'only-c' on 1 of the 3 VMs, every one that has it: c"), result.error)
  }

  func testShuttingDownASavedVMIsRefusedWithWhatToDo() throws {
    try run(["vm", "create", "web01", "--disk", "1M", "--additions"])
    try run(["vm", "start", "web01"])
    try run(["vm", "save", "web01"])
    let result = try run(["vm", "shutdown", "web01"], expect: 1)
    XCTAssertTrue(result.error.contains("VM 'web01' is saved, not running"), result.error)
    XCTAssertTrue(result.error.contains("turn it off"), result.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("library/vms/web01/saved.vsv")), "state kept")
  }

  func testCheckpointNamesFollowTheRulesTheReadmeGives() throws {
    try run(["vm", "create", "web01", "--disk", "1M"])
    // Shown, never a path: spaces and slashes are fine.
    try run(["checkpoint", "new", "web01", "--name", "before lab 2/3"])
    for bad in ["", "   ", "tab\there", String(repeating: "x", count: 129)] {
      let result = try run(["checkpoint", "new", "web01", "--name", bad], expect: 1)
      XCTAssertTrue(result.error.contains("1 to 128 characters"), result.error)
    }
    let listed = try run(["checkpoint", "list", "--vm", "web01"]).output
    XCTAssertTrue(listed.contains("before lab 2/3"), listed)
  }

  func testAMergeThatTakesLaterCheckpointsAsksFirst() throws {
    try run(["vm", "create", "web01", "--disk", "1M"])
    try run(["checkpoint", "new", "web01", "clean"])
    try run(["checkpoint", "new", "web01", "later"])
    // No terminal to answer: refused before anything is merged, naming --yes and --what-if.
    var result = try run(["checkpoint", "merge", "clean", "--vm", "web01"], expect: 2)
    XCTAssertTrue(result.error.contains("web01: 'later'"), result.error)
    XCTAssertTrue(result.error.contains("--yes") && result.error.contains("--what-if"), result.error)
    XCTAssertTrue(try run(["checkpoint", "list", "--vm", "web01"]).output.contains("later"), "nothing merged")
    result = try run(["checkpoint", "merge", "clean", "--vm", "web01", "--what-if"])
    XCTAssertTrue(result.output.contains("'later'"), result.output)
    try run(["checkpoint", "merge", "clean", "--vm", "web01", "--yes"])
    XCTAssertTrue(try run(["checkpoint", "list", "--vm", "web01"]).output.contains("no checkpoints"))
  }

  func testTeardownKeepsAVMAnotherLabHolds() throws {
    for name in ["a", "b"] { try run(["vm", "create", name, "--disk", "1M"]) }
    try run(["lab", "create", "one", "a", "b"])
    try run(["lab", "create", "two", "b"])
    // vmlab's options go before the script; what follows it is the script's.
    var result = try vmlab(["run"] + library + ["teardown-lab.lua", "--lab", "one", "--what-if"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("keep (also in lab two)"), result.output)
    result = try vmlab(["run"] + library + ["teardown-lab.lua", "--lab", "one"], in: folder.path)
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(
      result.output.contains("removed lab 'one' and 1 of its 2 VMs; 1 VM kept: other labs hold them"),
      result.output)
    let vms = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(try run(["vm", "list", "--json"]).output.utf8)) as? [[String: Any]])
    XCTAssertEqual(vms.compactMap { $0["name"] as? String }, ["b"])
    XCTAssertTrue(try run(["lab", "show", "two"]).output.contains("b"))
  }

  /// Commands are parsed without swift-argument-parser's completion check when the line asks for no
  /// completion (`FastParse`); help, version, completion scripts and errors still come from the
  /// full parse, as the user has always seen them (no second "vmlab" in a usage line).
  func testHelpCompletionAndErrorsComeFromTheFullParse() throws {
    var result = try vmlab(["lab", "restore", "--help"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("USAGE: vmlab lab restore <name> [<checkpoint>]"), result.output)
    result = try vmlab(["help", "lab", "restore"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("USAGE: vmlab lab restore <name>"), result.output)
    result = try vmlab(["--version"])
    XCTAssertEqual([result.status], [0])
    XCTAssertEqual(result.output, "0.1.0\n")
    for shell in ["bash", "zsh", "fish"] {
      result = try vmlab(["--generate-completion-script", shell])
      XCTAssertEqual(result.status, 0, result.error)
      XCTAssertTrue(result.output.contains("restore"), "\(shell): \(result.output.prefix(200))")
    }
    // Asked for anywhere on the line, as the parser has always looked for it.
    result = try vmlab(["lab", "restore", "class", "--generate-completion-script", "bash"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.hasPrefix("#!/bin/bash"), String(result.output.prefix(200)))
    result = try vmlab(["lab", "restore", "class", "--most-recent", "clean"])
    XCTAssertEqual(result.status, 2)
    XCTAssertTrue(result.error.hasPrefix("Error: name a checkpoint or pass --most-recent\n"), result.error)
    XCTAssertTrue(result.error.contains("Usage: vmlab lab restore <name>"), result.error)
    result = try vmlab(["lab", "restore"])
    XCTAssertEqual(result.status, 2)
    XCTAssertTrue(result.error.contains("Missing expected argument '<name>'"), result.error)
    result = try vmlab(["lab", "bogus"])
    XCTAssertEqual(result.status, 2)
    XCTAssertTrue(result.error.contains("Unexpected argument 'bogus'"), result.error)
  }
}
