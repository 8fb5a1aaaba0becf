import Foundation
import TestSupport
import XCTest

/// `vmlab repl` driven through a pipe and through a pseudo-terminal.
final class ReplTests: XCTestCase {
  private var folder: TemporaryFolder!

  override func setUp() {
    folder = TemporaryFolder()
  }

  private func repl(_ input: String, file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
    let result = try vmlab(["repl", "--library", folder.file("library")], in: folder.path, input: input)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, 0, result.error, file: file, line: line)
    return result
  }

  func testPipedLinesAreEvaluatedWithoutPrompts() throws {
    XCTAssertEqual(try repl("print(1+1)\n").output, "2\n")
  }

  func testExpressionsPrintAndStatementsRun() throws {
    let result = try repl("x = 20\nx + 22\n'text', nil, true\nlocal y = 1\n")
    XCTAssertEqual(result.output, "42\ntext\tnil\ttrue\n")
    XCTAssertEqual(result.error, "")
  }

  func testIncompleteChunksContinue() throws {
    let result = try repl("function double(n)\n  return n * 2\nend\ndouble(21)\nt = {\n 1,\n 2 }\n#t\n")
    XCTAssertEqual(result.output, "42\n2\n")
  }

  func testErrorsPrintAndTheSessionGoesOn() throws {
    let result = try repl("error('first')\nthis is not lua\nprint('still here')\nvmlab.vm.get('ghost')\n1\n")
    XCTAssertEqual(result.output, "still here\n1\n")
    XCTAssertTrue(result.error.contains("stdin:1: first"), result.error)
    XCTAssertTrue(result.error.contains("syntax error near 'is'"), result.error)
    XCTAssertTrue(result.error.contains("VM 'ghost' not found"), result.error)
  }

  func testAnUnfinishedChunkAtTheEndIsReported() throws {
    let result = try repl("for i = 1, 2 do\n")
    XCTAssertTrue(result.error.contains("'end' expected"), result.error)
  }

  func testTheEngineIsLoaded() throws {
    let result = try repl("web = vmlab.vm.create{name='web01', disks={'8M'}}\nweb\nweb:start()\n#vmlab.vms()\n")
    XCTAssertEqual(result.output, "VM web01 (stopped, 1 disk)\nVM web01 (running, 1 disk)\n1\n")
  }

  /// An open REPL does not hold the library while it waits at its prompt: other commands run, and
  /// the REPL sees what they did.
  func testOtherCommandsRunWhileTheReplIsIdle() throws {
    let library = ["--library", folder.file("library")]
    let repl = try BackgroundVMLab(["repl"] + library)
    defer { repl.finish() }
    repl.send("vmlab.vm.create{name='web01', disks={'8M'}} print('created')\n")
    try repl.waitForOutput("created\n")
    let listed = try vmlab(["vm", "list"] + library)
    XCTAssertEqual(listed.status, 0, listed.error)
    XCTAssertTrue(listed.output.contains("web01"), listed.output)
    let created = try vmlab(["vm", "create", "web02", "--disk", "8M"] + library)
    XCTAssertEqual(created.status, 0, created.error)
    repl.send("print('count', #vmlab.vms())\n")
    try repl.waitForOutput("count\t2\n")
  }

  func testCtrlCStopsTheRunningChunkAndTheSessionGoesOn() throws {
    let repl = try BackgroundVMLab(["repl", "--library", folder.file("library")])
    repl.send("n = 0\nprint('looping') io.stdout:flush() while true do n = n + 1 end\n")
    // Interrupt once the loop runs (it says so), not while vmlab is still starting.
    try repl.waitForOutput("looping\n")
    repl.process.interrupt()  // SIGINT, as Ctrl-C sends
    repl.finish(input: "print('still here', n > 0)\n")
    XCTAssertEqual(repl.process.terminationReason, .exit, repl.errors)
    XCTAssertEqual(repl.status, 0, repl.errors)
    XCTAssertEqual(repl.output, "looping\nstill here\ttrue\n")
    XCTAssertTrue(repl.errors.contains("stdin:1: interrupted"), repl.errors)
  }

  /// Through a pseudo-terminal (python3's pty module): prompts, libedit's line editing, history.
  func testInteractiveSessionThroughAPseudoTerminal() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
      throw XCTSkip("python3 is needed to drive a pseudo-terminal")
    }
    let binary = try VMLabBinary.path
    let history = folder.file("history")
    let driver = """
      import os, pty, sys, time, select
      pid, fd = pty.fork()
      if pid == 0:
          os.environ["TERM"] = "dumb"
          os.environ["VMLAB_HISTORY"] = sys.argv[2]
          os.execv(sys.argv[1], [sys.argv[1], "repl", "--library", sys.argv[3]])
      out = b""
      def read_until(token, timeout=20):
          global out
          end = time.time() + timeout
          while token not in out and time.time() < end:
              ready, _, _ = select.select([fd], [], [], 0.2)
              if ready:
                  try:
                      out += os.read(fd, 4096)
                  except OSError:
                      break
      read_until(b"> ")
      for line in [b"1 + 41", b"function f()", b"return 'multi' end", b"f()", b"xyz\\x7f\\x7f\\x7f'edited'"]:
          os.write(fd, line + b"\\r")
          time.sleep(0.3)
      os.write(fd, b"\\x04")
      read_until(b"\\nedited", 5)
      time.sleep(0.5)
      try:
          while True:
              ready, _, _ = select.select([fd], [], [], 0.5)
              if not ready:
                  break
              chunk = os.read(fd, 4096)
              if not chunk:
                  break
              out += chunk
      except OSError:
          pass
      _, status = os.waitpid(pid, 0)
      sys.stdout.write(out.decode("utf-8", "replace"))
      sys.exit(os.waitstatus_to_exitcode(status))
      """
    let script = folder.file("drive-terminal.py")
    try driver.write(toFile: script, atomically: true, encoding: .utf8)
    let result = try runProgram("/usr/bin/python3", [script, binary, history, folder.file("library")], in: folder.path)
    XCTAssertEqual(result.status, 0, result.output + result.error)
    XCTAssertTrue(result.output.contains("vmlab 0.1.0 (Lua 5.4)"), result.output)
    XCTAssertTrue(result.output.contains("42"), result.output)
    XCTAssertTrue(result.output.contains(">> "), "no continuation prompt: \(result.output)")
    XCTAssertTrue(result.output.contains("multi"), result.output)
    XCTAssertTrue(result.output.contains("edited"), result.output)
    let saved = (try? String(contentsOfFile: history, encoding: .utf8)) ?? ""
    // libedit's history file escapes blanks (vis(3)): "1 + 41" is stored as 1\040+\04041.
    XCTAssertTrue(saved.contains(#"1\040+\04041"#), "history: \(saved)")
    XCTAssertTrue(saved.contains(#"function\040f()\012return"#), "a multi-line chunk is one entry: \(saved)")
  }
}
