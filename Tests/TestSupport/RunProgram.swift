import Foundation

/// How a program that a test ran ended, and what it printed.
public struct ProgramResult: Sendable {
  public var status: Int32
  public var output: String
  public var error: String
  /// True when the process ended by a signal (a crash) instead of exiting.
  public var signaled: Bool
}

/// Runs a program to its end, the one way every test does: `input` is written on a thread of its
/// own and standard output and standard error are drained at the same time, so a child that fills
/// one pipe while the test is busy with another never blocks. The environment is the test's with
/// `environment` laid over it.
public func runProgram(
  _ executable: String, _ arguments: [String], in directory: String? = nil, input: Data? = nil,
  environment: [String: String] = [:]
) throws -> ProgramResult {
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
  let streams = DispatchGroup()
  let collected = Collected()
  let writer = stdin.fileHandleForWriting
  DispatchQueue.global().async(group: streams) {
    if let input { try? writer.write(contentsOf: input) }
    try? writer.close()
  }
  DispatchQueue.global().async(group: streams) {
    let data = error.fileHandleForReading.readDataToEndOfFile()
    collected.lock.withLock { collected.error = data }
  }
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  streams.wait()
  process.waitUntilExit()
  return ProgramResult(
    status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
    error: collected.lock.withLock { String(decoding: collected.error, as: UTF8.self) },
    signaled: process.terminationReason == .uncaughtSignal)
}

/// The same with text as input.
public func runProgram(
  _ executable: String, _ arguments: [String], in directory: String? = nil, input: String?,
  environment: [String: String] = [:]
) throws -> ProgramResult {
  try runProgram(executable, arguments, in: directory, input: input.map { Data($0.utf8) }, environment: environment)
}

private final class Collected: @unchecked Sendable {
  let lock = NSLock()
  var error = Data()
}
