import Foundation
import TestSupport
import XCTest

/// `vmlab run` end to end: files, -e chunks, bundled scripts, arguments, errors, the sandbox.
final class ScriptCommandTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: [String] { ["--library", folder.file("library")] }

  override func setUp() {
    folder = TemporaryFolder()
  }

  private func write(_ name: String, _ text: String) -> String {
    let path = folder.file(name)
    try! FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try! text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @discardableResult
  private func run(
    _ arguments: [String], expect status: Int32 = 0, environment: [String: String] = [:], input: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> CommandResult {
    let result = try vmlab(["run"] + arguments, in: folder.path, input: input, environment: environment)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }

  func testRunsAFileWithTheEngine() throws {
    let script = write(
      "lab.lua",
      """
      local web = vmlab.vm.create{name="web01", disks={"16M", "4M"}, additions=true}
      web:start()
      local cp, action = web:checkpoint{name="clean"}
      print(web)
      print(cp.name, action, #web:checkpoints())
      """)
    let result = try run(library + [script])
    XCTAssertEqual(result.output, "VM web01 (running, 2 disks)\nclean\tshut down\t1\n")
    // The direct verbs see what the script did.
    let listed = try vmlab(["checkpoint", "list", "--vm", "web01"] + library, in: folder.path)
    XCTAssertTrue(listed.output.contains("clean"), listed.output)
  }

  func testRunsChunksWithoutALibrary() throws {
    let result = try run(
      ["-e", "print(1 + 1)", "-e", "print(vmlab.version)"], environment: ["VMLAB_LIBRARY": folder.file("unused")])
    XCTAssertEqual(result.output, "2\n0.1.0\n")
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: folder.file("unused")), "a chunk that uses no VMs opened a library")
    let disk = try run(["-e", #"local d = vmlab.disk.create{path="d.vhd", size="1M"}; print(d.size, d.path)"#])
    XCTAssertEqual(disk.output, "1079296\t\(folder.file("d.vhd"))\n", "1 MiB rounded up to 31/4/17")
  }

  func testScriptArgumentsAreInArgAndDots() throws {
    let script = write("args.lua", "print(#arg, arg[0], arg[1], arg[2], arg[3], arg[-1], select('#', ...), ...)")
    let result = try run([script, "one", "--two", "-e"])
    XCTAssertEqual(result.output, "3\t\(script)\tone\t--two\t-e\trun\t3\tone\t--two\t-e\n")
  }

  func testSyntaxErrorsNameFileAndLine() throws {
    let script = "bad.lua"
    _ = write(script, "local x = 1\nlocal y = = 2\n")
    let result = try run([script], expect: 1)
    XCTAssertTrue(result.error.contains("\(script):2:"), result.error)
    XCTAssertTrue(result.error.contains("unexpected symbol near '='"), result.error)
    let chunk = try run(["-e", "x ="], expect: 1)
    XCTAssertTrue(chunk.error.contains("(command line):1:"), chunk.error)
  }

  func testRuntimeErrorsPrintATraceback() throws {
    // Relative: Lua shortens long chunk names in messages ("...end/of/the/path.lua").
    let script = "fail.lua"
    _ = write(script, "print('before')\nlocal function inner() error('it broke') end\ninner()\n")
    let result = try run([script], expect: 1)
    XCTAssertEqual(result.output, "before\n")
    XCTAssertTrue(result.error.contains("\(script):2: it broke"), result.error)
    XCTAssertTrue(result.error.contains("stack traceback:"), result.error)
    XCTAssertTrue(result.error.contains("in local 'inner'"), result.error)
    // An engine error is a Lua error with the engine's message.
    let engine = try run(library + ["-e", "vmlab.vm.get('ghost')"], expect: 1)
    XCTAssertTrue(engine.error.contains("VM 'ghost' not found"), engine.error)
    let caught = try run(library + ["-e", "print(pcall(vmlab.vm.get, 'ghost'))"])
    XCTAssertTrue(caught.output.hasPrefix("false\tVM 'ghost' not found"), caught.output)
  }

  func testOsExitFlushesAndSetsTheStatus() throws {
    let result = try run(["-e", "io.write('partial'); print(' line'); os.exit(3)"], expect: 3)
    XCTAssertEqual(result.output, "partial line\n")
    try run(["-e", "os.exit(true)"], expect: 0)
    try run(["-e", "os.exit(false)"], expect: 1)
  }

  func testBundledScriptsAndModulesAreFoundFromAnyFolder() throws {
    let stdlib = folder.file("stdlib")
    _ = write("stdlib/hello.lua", "local lab = require 'vmlab.greeting'\nprint(lab.greet(arg[1]))\n")
    _ = write("stdlib/vmlab/greeting.lua", "return { greet = function(who) return 'hello ' .. who end }\n")
    _ = write("elsewhere/local.lua", "return { value = 42 }")
    let beside = write("elsewhere/main.lua", "print(require('local').value)")
    let result = try run(["hello", "class"], environment: ["VMLAB_STDLIB": stdlib])
    XCTAssertEqual(result.output, "hello class\n")
    XCTAssertEqual(try run(["hello.lua", "you"], environment: ["VMLAB_STDLIB": stdlib]).output, "hello you\n")
    // Modules beside the script, whatever the working folder.
    XCTAssertEqual(try run([beside]).output, "42\n")
    let missing = try run(["no-such-script"], expect: 1, environment: ["VMLAB_STDLIB": stdlib])
    XCTAssertTrue(missing.error.contains("cannot find the script 'no-such-script'"), missing.error)
  }

  /// Jobs run on after the script's last line; one that failed fails the run, named with its kind,
  /// target and error, even when the script never looked at it.
  func testFailedJobsTheScriptQueuedAreReportedAndFailTheRun() throws {
    // Jobs of one VM run in order: the merge removes the checkpoint the restore then looks for.
    let queue = """
      local web = vmlab.vm.create{name="web01", disks={"8M"}}
      local clean = web:checkpoint{name="clean"}
      local merge = clean:merge{async=true}
      local restore = clean:restore{async=true}
      print("queued", merge.id, restore.id)
      """
    let result = try run(library + ["-e", queue], expect: 1)
    XCTAssertEqual(result.output, "queued\t1\t2\n")
    XCTAssertTrue(result.error.contains("1 of the 2 jobs the script queued failed:"), result.error)
    XCTAssertTrue(result.error.contains("job 2, restore of web01: "), result.error)
    XCTAssertTrue(result.error.contains("not found"), result.error)
    XCTAssertFalse(result.error.contains("job 1,"), "the merge completed: \(result.error)")
    // os.exit(0) ends the session the same way: the jobs finish, the failure is reported.
    let exited = try run(
      library + ["-e", queue.replacingOccurrences(of: "web01", with: "web02") + "os.exit(0)"], expect: 1)
    XCTAssertTrue(exited.error.contains("restore of web02"), exited.error)
    // The same through the REPL (where each line is a chunk: globals, not locals).
    let repl = try vmlab(
      ["repl"] + library, in: folder.path,
      input: queue.replacingOccurrences(of: "web01", with: "web03").replacingOccurrences(of: "local ", with: ""))
    XCTAssertEqual(repl.status, 1, repl.error)
    XCTAssertTrue(repl.error.contains("restore of web03"), repl.error)
    // Jobs that completed say nothing, and the run succeeds.
    let fine = try run(library + ["-e", "vmlab.vm.create{name='db01', disks={'8M'}}:checkpoint{name='a', async=true}"])
    XCTAssertEqual(fine.error, "")
    let jobs = try parseJSONArray(try vmlab(["job", "list", "--json"] + library, in: folder.path).output)
    XCTAssertEqual(jobs.filter { $0["status"] as? String == "completed" }.count, 4, "\(jobs)")
  }

  func testScriptFromStandardInput() throws {
    XCTAssertEqual(try run(["-", "x"], input: "print('stdin', ...)").output, "stdin\tx\n")
  }

  func testUsageErrors() throws {
    let result = try vmlab(["run"], in: folder.path)
    XCTAssertEqual(result.status, 2, result.error)
    XCTAssertTrue(result.error.contains("give a script to run"), result.error)
  }

  func testCtrlCStopsTheScriptWithATraceback() throws {
    // It says so from inside the loop: an interrupt now lands at the very next instruction.
    let script = write(
      "spin.lua", "local n = 0\nwhile true do n = n + 1 if n == 1 then print('started') io.stdout:flush() end end\n")
    let running = try BackgroundVMLab(["run", script])
    // Interrupt once the script runs (it says so), not while vmlab is still starting.
    try running.waitForOutput("started")
    running.process.interrupt()
    running.finish()
    XCTAssertEqual(running.process.terminationReason, .exit, "vmlab died of the signal instead of stopping the script")
    XCTAssertEqual(running.status, 1, running.errors)
    XCTAssertTrue(running.errors.contains("spin.lua:2: interrupted"), running.errors)
    XCTAssertTrue(running.errors.contains("stack traceback"), running.errors)
  }

  func testHelpInPlaceOfTheScriptIsVmlabsHelp() throws {
    for flag in ["--help", "-h"] {
      let result = try vmlab(["run", flag], in: folder.path)
      XCTAssertEqual(result.status, 0, result.error)
      XCTAssertTrue(result.output.contains("SCRIPT is a path"), result.output)
      // Every bundled script the examples name exists, and runs with the arguments shown.
      let examples = result.output.split(separator: "\n").filter { $0.contains("vmlab run ") && $0.contains(".lua") }
      XCTAssertFalse(examples.isEmpty, result.output)
      for example in examples {
        for word in example.split(separator: " ") where word.hasSuffix(".lua") && !word.contains("/") {
          let stdlib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Stdlib/\(word)").path
          XCTAssertTrue(FileManager.default.fileExists(atPath: stdlib), "help names \(word), which is not in Stdlib")
        }
      }
    }
    // After the script, --help belongs to the script.
    let script = write("help.lua", "print(...)")
    XCTAssertEqual(try run([script, "--help"]).output, "--help\n")
  }

  func testSandboxedScriptsCannotNameFiles() throws {
    let target = folder.file("made-by-sandbox.vhd")
    for chunk in [
      "vmlab.disk.create{path='\(target)', size='1M'}", "vmlab.disk.open('\(target)')",
      "vmlab.vm.create{name='x', from='\(target)'}", "io.open('\(target)', 'w')", "os.remove('\(target)')",
    ] {
      let result = try run(["--sandbox", "-e", chunk], expect: 1)
      XCTAssertFalse(result.signaled)
      XCTAssertFalse(FileManager.default.fileExists(atPath: target), chunk)
    }
    let refused = try run(["--sandbox", "-e", "vmlab.disk.create{path='\(target)', size='1M'}"], expect: 1)
    XCTAssertTrue(refused.error.contains("not available with --sandbox"), refused.error)
    // Without the sandbox the same call works.
    try run(["-e", "vmlab.disk.create{path='\(target)', size='1M'}:close()"])
    XCTAssertTrue(FileManager.default.fileExists(atPath: target))
  }

  func testSandboxStopsRunawayScripts() throws {
    let loop = try run(["--sandbox", "-e", "while true do end"], expect: 1)
    XCTAssertTrue(loop.error.contains("instruction budget of 10000000 exceeded"), loop.error)
    XCTAssertTrue(loop.error.contains("--instruction-budget"), loop.error)
    let small = try run(["--sandbox", "--instruction-budget", "50000", "-e", "for i = 1, 1e6 do end"], expect: 1)
    XCTAssertTrue(small.error.contains("instruction budget of 50000 exceeded"), small.error)
    // pcall cannot swallow the budget.
    let caught = try run(
      [
        "--sandbox", "--instruction-budget", "50000", "-e",
        "print(pcall(function() while true do end end)) print('after')",
      ], expect: 1)
    XCTAssertFalse(caught.output.contains("after"), caught.output)

    let memory = try run(["--sandbox", "-e", "local t = {} for i = 1, 1e8 do t[i] = i end"], expect: 1)
    XCTAssertTrue(memory.error.contains("memory limit of 67108864 bytes exceeded"), memory.error)
    let string = try run(
      ["--sandbox", "--memory-limit", "8M", "-e", "local s = string.rep('x', 64 * 1024 * 1024)"], expect: 1)
    XCTAssertTrue(string.error.contains("memory limit of 8388608 bytes exceeded"), string.error)

    let absent = try run(
      ["--sandbox", "-e", "print(io, os, debug, package.loadlib, select(2, load(string.dump(function() end))))"])
    XCTAssertEqual(absent.output, "nil\tnil\tnil\tnil\tattempt to load a binary chunk (mode is 't')\n")
    // The engine stays available in the sandbox.
    XCTAssertEqual(try run(["--sandbox"] + library + ["-e", "print(#vmlab.vms())"]).output, "0\n")
    // Unlimited again when asked.
    try run(["--sandbox", "--instruction-budget", "0", "-e", "for i = 1, 2e7 do end"])
  }

  func testBridgeBenchmarkPrintsJSON() throws {
    let result = try run(["--bench-bridge"], environment: ["LUAHOST_BENCHMARK_ITERATIONS": "20000"])
    let json = try parseJSON(result.output)
    XCTAssertNotNil(json["bridgedCall"] as? Double, result.output)
    XCTAssertNotNil(json["luaCall"] as? Double, result.output)
  }
}
