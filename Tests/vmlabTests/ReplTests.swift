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

  /// What a person exploring wants to see: lists as tables of their items, plans and other tables
  /// as their fields, never `VMs: 0x…`.
  func testListsAndTablesShowTheirContents() throws {
    let result = try repl(
      """
      web = vmlab.vm.create{name='web01', disks={'8M', '4M'}}
      vmlab.vm.create{name='db01', disks={'8M'}}:checkpoint{name='clean'}
      web:checkpoint{name='clean'}
      vmlab.vms()
      vmlab.checkpoints{mostRecent=true}
      vmlab.checkpoints{vm='web01'}[1]:restore{whatIf=true}
      web.disks[1].chain
      {}

      """)
    XCTAssertFalse(result.output.contains("0x"), result.output)
    XCTAssertEqual(result.error, "")
    let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    // vmlab.vms(): a header, a rule, a row per VM.
    let vms = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("name   state") }, result.output)
    XCTAssertTrue(lines[vms + 1].hasPrefix("----   -----"), result.output)
    XCTAssertTrue(lines[vms + 2].hasPrefix("db01   stopped  1 "), result.output)
    XCTAssertTrue(lines[vms + 3].hasPrefix("web01  stopped  2 "), result.output)
    // The most recent checkpoints: one row each, the VM by name.
    let checkpoints = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("name   vm     id") }, result.output)
    XCTAssertTrue(lines[checkpoints + 2].hasPrefix("clean  db01   1"), result.output)
    XCTAssertTrue(lines[checkpoints + 3].hasPrefix("clean  web01  2"), result.output)
    // The what-if plan: its fields, the files one per line.
    let plan = try XCTUnwrap(lines.firstIndex(of: "vm                 : web01"), result.output)
    XCTAssertEqual(lines[plan + 1], "operation          : restore")
    XCTAssertEqual(lines[plan + 2], "applied            : false")
    XCTAssertTrue(lines.contains { $0.hasPrefix("filesRemoved       : \(folder.file("library"))/vms/web01/") })
    // The chain: its paths, leaf first.
    let chain = try XCTUnwrap(lines.firstIndex { $0.hasSuffix("/vms/web01/web01-disk1.vhd") }, result.output)
    XCTAssertTrue(lines[chain - 1].hasSuffix("_01.vhd"), result.output)
    XCTAssertEqual(lines[chain + 1], "{}")
  }

  func testCtrlCStopsTheRunningChunkAndTheSessionGoesOn() throws {
    let repl = try BackgroundVMLab(["repl", "--library", folder.file("library")])
    // It says so from inside the loop: an interrupt now lands at the very next instruction.
    repl.send("n = 0\nwhile true do n = n + 1 if n == 1 then print('looping') io.stdout:flush() end end\n")
    // Interrupt once the loop runs (it says so), not while vmlab is still starting.
    try repl.waitForOutput("looping\n")
    repl.process.interrupt()  // SIGINT, as Ctrl-C sends
    repl.finish(input: "print('still here', n > 0)\n")
    XCTAssertEqual(repl.process.terminationReason, .exit, repl.errors)
    XCTAssertEqual(repl.status, 0, repl.errors)
    XCTAssertEqual(repl.output, "looping\nstill here\ttrue\n")
    XCTAssertTrue(repl.errors.contains("stdin:1: interrupted"), repl.errors)
  }

  /// Ctrl-C at an idle prompt abandons the line (and an unfinished chunk) and prompts again, as
  /// shells and `lua` do; Ctrl-C while a chunk runs stops it; Ctrl-D ends the session. Driven
  /// through a real terminal (python3's pty module), where Ctrl-C is the terminal's, not a kill.
  func testCtrlCAtThePromptClearsTheLineAndCtrlDEnds() throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
      throw XCTSkip("python3 is needed to drive a pseudo-terminal")
    }
    let driver = #"""
      import os, pty, sys, time, select, signal, termios
      pid, fd = pty.fork()
      if pid == 0:
          os.environ["TERM"] = "dumb"
          os.environ["VMLAB_HISTORY"] = ""
          os.execv(sys.argv[1], [sys.argv[1], "repl", "--library", sys.argv[2]])
      out = b""
      def expect(token, timeout=20):
          # Waits (with a deadline) until the output since the last expectation holds the token.
          global out
          end = time.time() + timeout
          while token not in out:
              if time.time() > end:
                  os.kill(pid, signal.SIGKILL)
                  sys.exit("timed out waiting for %r; the output since the last step: %r" % (token, out))
              ready, _, _ = select.select([fd], [], [], 0.2)
              if ready:
                  try:
                      out += os.read(fd, 4096)
                  except OSError:
                      break
          cut = out.index(token) + len(token)
          seen, out = out[:cut], out[cut:]
          return seen
      def key(data, timeout=20):
          # libedit prints the prompt a moment before it puts the terminal in raw mode; keys typed
          # in between meet a cooked terminal (echoed twice, Ctrl-D taken as end of file). A person
          # is never that fast: wait, with a deadline, until the terminal is raw.
          end = time.time() + timeout
          while termios.tcgetattr(fd)[3] & termios.ICANON:
              if time.time() > end:
                  os.kill(pid, signal.SIGKILL)
                  sys.exit("the terminal never left canonical mode")
              select.select([], [], [], 0.01)
          os.write(fd, data)
      transcript = expect(b"> ")
      key(b"abandoned = 1")
      transcript += expect(b"abandoned = 1")
      key(b"\x03")                       # Ctrl-C at the prompt
      transcript += expect(b"> ")
      key(b"print('alive', abandoned)\r")
      transcript += expect(b"alive\tnil")
      key(b"function half()\r")
      transcript += expect(b">> ")
      key(b"\x03")                       # Ctrl-C in an unfinished chunk
      transcript += expect(b"> ")
      key(b"print('chunk', half)\r")
      transcript += expect(b"chunk\tnil")
      key(b"print('loop' .. 'ing') while true do end\r")
      transcript += expect(b"looping")
      os.write(fd, b"\x03")                       # Ctrl-C while a chunk runs
      transcript += expect(b"interrupted")
      transcript += expect(b"> ")
      key(b"\x03")                       # and at the prompt again afterwards
      transcript += expect(b"> ")
      key(b"print('still', 6 * 7)\r")
      transcript += expect(b"still\t42")
      transcript += expect(b"> ")
      key(b"\x04")                       # Ctrl-D ends
      end = time.time() + 20
      while True:
          done, status = os.waitpid(pid, os.WNOHANG)
          if done:
              break
          if time.time() > end:
              os.kill(pid, signal.SIGKILL)
              sys.exit("vmlab did not end after Ctrl-D: %r" % (transcript + out))
          time.sleep(0.05)
      sys.stdout.write(transcript.decode("utf-8", "replace"))
      sys.exit(os.waitstatus_to_exitcode(status))
      """#
    let script = folder.file("drive-ctrl-c.py")
    try driver.write(toFile: script, atomically: true, encoding: .utf8)
    let result = try runProgram(
      "/usr/bin/python3", [script, try VMLabBinary.path, folder.file("library")], in: folder.path)
    XCTAssertEqual(result.status, 0, "vmlab did not end normally: " + result.output + result.error)
    XCTAssertTrue(result.output.contains("^C"), result.output)
    XCTAssertTrue(result.output.contains("stdin:1: interrupted"), result.output)
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
