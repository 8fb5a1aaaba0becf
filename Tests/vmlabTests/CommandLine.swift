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

struct CommandResult {
  var status: Int32
  var output: String
  var error: String
  /// True when the process ended by a signal (a crash) instead of exiting.
  var signaled: Bool
}

/// Runs `vmlab` with `arguments` in `directory`, with `input` on standard input.
@discardableResult
func vmlab(
  _ arguments: [String], in directory: String? = nil, input: String? = nil, environment: [String: String] = [:]
) throws
  -> CommandResult
{
  try runProgram(try VMLabBinary.path, arguments, in: directory, input: input, environment: environment)
}

func runProgram(
  _ executable: String, _ arguments: [String], in directory: String? = nil, input: String? = nil,
  environment: [String: String] = [:]
) throws -> CommandResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
  process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
  let output = Pipe()
  let error = Pipe()
  let stdin = Pipe()
  process.standardOutput = output
  process.standardError = error
  process.standardInput = stdin
  try process.run()
  if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
  try stdin.fileHandleForWriting.close()
  // Read both pipes concurrently so a full pipe never blocks the child.
  final class Collected: @unchecked Sendable { var data = Data() }
  let errorData = Collected()
  let group = DispatchGroup()
  group.enter()
  DispatchQueue.global().async {
    errorData.data = error.fileHandleForReading.readDataToEndOfFile()
    group.leave()
  }
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  group.wait()
  process.waitUntilExit()
  return CommandResult(
    status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
    error: String(decoding: errorData.data, as: UTF8.self), signaled: process.terminationReason == .uncaughtSignal)
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

  private final class Collected: @unchecked Sendable {
    let lock = NSLock()
    var data = Data()
    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
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
          if chunk.isEmpty { break }
          collected.lock.withLock { collected.data.append(chunk) }
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

  func waitForOutput(_ text: String, timeout: TimeInterval = 30) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !output.contains(text) {
      guard Date() < deadline, process.isRunning else {
        throw NSError(
          domain: "BackgroundVMLab", code: 1,
          userInfo: [NSLocalizedDescriptionKey: "never printed \(text): \(output)\(errors)"])
      }
      Thread.sleep(forTimeInterval: 0.01)
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
