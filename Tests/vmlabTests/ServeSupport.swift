import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `vmlab disk serve` in the background: waited for with a deadline, and always ended, by the test or
/// else by its teardown (SIGKILL), even when the test fails.
final class ServeProcess {
  let background: BackgroundVMLab
  let socket: String
  var uri: String { "nbd+unix:///?socket=\(socket)" }
  var pid: Int32 { background.process.processIdentifier }

  init(_ path: String, socket: String, extra: [String] = [], test: XCTestCase) throws {
    self.socket = socket
    background = try BackgroundVMLab(["disk", "serve", path, "--socket", socket] + extra)
    test.addTeardownBlock { [background] in
      if background.process.isRunning { kill(background.process.processIdentifier, SIGKILL) }
      background.finish()
    }
    try background.waitForOutput("serving ", timeout: 60)
  }

  /// Sends `signal` and waits (with a deadline) for the exit status; nil when it ended by a signal.
  func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 30) throws -> Int32? {
    kill(pid, signal)
    let deadline = Date().addingTimeInterval(timeout)
    while background.process.isRunning {
      guard Date() < deadline else {
        kill(pid, SIGKILL)
        throw NSError(
          domain: "ServeProcess", code: 1,
          userInfo: [NSLocalizedDescriptionKey: "vmlab disk serve did not stop in \(timeout) s"])
      }
      Thread.sleep(forTimeInterval: 0.02)
    }
    background.finish()
    return background.process.terminationReason == .exit ? background.status : nil
  }
}

/// A program from the PATH, or a skip naming the package that brings it.
func externalTool(_ name: String) throws -> String {
  for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
    let path = "\(folder)/\(name)"
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  throw XCTSkip("\(name) is not installed; Scripts/bootstrap installs it")
}

/// Runs a program with a deadline: a client that hangs on the server fails the test instead of
/// hanging it.
@discardableResult
func runClient(_ name: String, _ arguments: [String], timeout: TimeInterval = 60, in directory: String? = nil) throws
  -> CommandResult
{
  let path = try externalTool(name)
  // nbdsh runs `env python3`: Debian's, which has the nbd module, not another one earlier on the PATH.
  let searchPath = "/usr/bin:/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
  return try runProgram(
    try externalTool("timeout"), ["--kill-after=5", String(Int(timeout)), path] + arguments, in: directory,
    environment: ["PATH": searchPath])
}

/// Compares two disk images and names the first differing byte (XCTAssertEqual would print both).
func assertSameBytes(
  _ actual: [UInt8], _ expected: [UInt8], _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) {
  guard actual != expected else { return }
  guard actual.count == expected.count else {
    XCTFail("\(message): \(actual.count) bytes, expected \(expected.count)", file: file, line: line)
    return
  }
  let first = actual.indices.first { actual[$0] != expected[$0] }!
  let differing = zip(actual, expected).lazy.filter { $0 != $1 }.count
  XCTFail("\(message): \(differing) bytes differ, the first at offset \(first)", file: file, line: line)
}
