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
