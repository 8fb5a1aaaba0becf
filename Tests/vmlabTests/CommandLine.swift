import Foundation
import TestSupport
import XCTest

/// Runs the built `vmlab` binary, the way a user does.
enum VMLabBinary {
  /// The executable beside the test bundle in the build folder.
  static var path: String {
    get throws {
      let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
      for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("vmlab").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
      }
      for bundle in Bundle.allBundles {
        let path = bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("vmlab").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
      }
      throw XCTSkip("the vmlab binary was not built beside the tests (run swift build first)")
    }
  }
}

/// What a vmlab run printed and how it ended.
typealias CommandResult = ProgramResult

/// Runs `vmlab` with `arguments` in `directory`, with `input` on standard input.
@discardableResult
func vmlab(
  _ arguments: [String], in directory: String? = nil, input: String? = nil, environment: [String: String] = [:]
) throws
  -> CommandResult
{
  try runProgram(try VMLabBinary.path, arguments, in: directory, input: input, environment: environment)
}

func parseJSON(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
  let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
  return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
}

/// A vmlab process running in the background: input sent while it runs, standard output and
/// standard error collected apart.
final class BackgroundVMLab {
  let process = Process()
  private let input = Pipe()
  private let collectedOutput = Collected()
  private let collectedErrors = Collected()
  private let done = DispatchGroup()

  /// What a stream printed so far; waiters are woken at each new piece.
  private final class Collected: @unchecked Sendable {
    let condition = NSCondition()
    var data = Data()
    var ended = false
    var text: String { condition.withLock { String(decoding: data, as: UTF8.self) } }
  }

  init(_ arguments: [String]) throws {
    process.executableURL = URL(fileURLWithPath: try VMLabBinary.path)
    process.arguments = arguments
    process.standardInput = input
    let outputPipe = Pipe()
    let errorPipe = Pipe()
    process.standardOutput = outputPipe
    process.standardError = errorPipe
    try process.run()
    for (pipe, collected) in [(outputPipe, collectedOutput), (errorPipe, collectedErrors)] {
      let handle = pipe.fileHandleForReading
      done.enter()
      DispatchQueue.global().async { [done] in
        while true {
          let chunk = handle.availableData
          collected.condition.withLock {
            if chunk.isEmpty { collected.ended = true } else { collected.data.append(chunk) }
            collected.condition.broadcast()
          }
          if chunk.isEmpty { break }
        }
        done.leave()
      }
    }
  }

  /// What it printed on standard output so far.
  var output: String { collectedOutput.text }
  /// What it printed on standard error so far.
  var errors: String { collectedErrors.text }
  var status: Int32 { process.terminationStatus }

  /// Returns once standard output holds `text`; throws when the stream ends or the time runs out.
  func waitForOutput(_ text: String, timeout: TimeInterval = 30) throws {
    try wait(for: text, in: collectedOutput, timeout: timeout)
  }

  /// The same for standard error.
  func waitForErrors(_ text: String, timeout: TimeInterval = 30) throws {
    try wait(for: text, in: collectedErrors, timeout: timeout)
  }

  private func wait(for text: String, in collected: Collected, timeout: TimeInterval) throws {
    let deadline = Date().addingTimeInterval(timeout)
    let found = collected.condition.withLock { () -> Bool in
      while !String(decoding: collected.data, as: UTF8.self).contains(text) {
        if collected.ended || !collected.condition.wait(until: deadline) { return false }
      }
      return true
    }
    if !found {
      throw NSError(
        domain: "BackgroundVMLab", code: 1,
        userInfo: [NSLocalizedDescriptionKey: "never printed \(text): \(output)\(errors)"])
    }
  }

  /// Writes to its standard input, which stays open.
  func send(_ text: String) {
    input.fileHandleForWriting.write(Data(text.utf8))
  }

  /// Sends `text` if given, closes its standard input and waits until it has ended.
  func finish(input text: String? = nil) {
    if let text { send(text) }
    try? input.fileHandleForWriting.close()
    done.wait()
    process.waitUntilExit()
  }
}

/// A test of the direct verbs on a temporary library: `run` adds `--library` and checks the exit
/// status (and that vmlab did not crash).
class LibraryCommandTestCase: XCTestCase {
  var folder: TemporaryFolder!
  var library: [String] { ["--library", folder.file("library")] }

  override func setUp() {
    folder = TemporaryFolder()
  }

  @discardableResult
  func run(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    try checked(arguments, try vmlab(arguments + library, in: folder.path), status, file, line)
  }

  /// The same with `--library` first: what follows `--` (or a chunk) is not vmlab's.
  @discardableResult
  func runFirst(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    try checked(arguments, try vmlab(library + arguments, in: folder.path), status, file, line)
  }

  private func checked(
    _ arguments: [String], _ result: CommandResult, _ status: Int32, _ file: StaticString, _ line: UInt
  ) -> CommandResult {
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }
}
