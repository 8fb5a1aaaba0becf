import Foundation
import TestSupport
import XCTest

@testable import VHD

/// The shared conformance files (../shared/testdata/vhd beside the checkout), or a skip when absent.
enum SharedTestData {
  static var folder: String {
    let here = URL(fileURLWithPath: #filePath)
    let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.deletingLastPathComponent().appendingPathComponent("shared/testdata/vhd").path
  }

  static func path(_ name: String) throws -> String {
    let path = folder + "/" + name
    guard FileManager.default.fileExists(atPath: path) else {
      throw XCTSkip("shared test data not found at \(folder); it lives in ../shared/testdata/vhd beside the checkout")
    }
    return path
  }
}

/// Runs a program and returns its exit status and output.
@discardableResult
func runTool(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> (
  status: Int32, output: String, error: String
) {
  let result = try runProgram(executable, arguments, input: input)
  return (result.status, result.output, result.error)
}

/// Finds a tool on the PATH, or skips the test with a clear message.
func tool(_ name: String) throws -> String {
  for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
    let path = "\(folder)/\(name)"
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  throw XCTSkip("\(name) is not installed; Scripts/bootstrap installs it")
}

/// SHA-256 of a file, by sha256sum.
func sha256(ofFile path: String) throws -> String {
  let result = try runTool(try tool("sha256sum"), [path])
  return String(result.output.prefix(64))
}

func sha256(of bytes: [UInt8], in folder: TemporaryFolder) throws -> String {
  let path = folder.file("hash-\(UUID().uuidString)")
  XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
  defer { try? FileManager.default.removeItem(atPath: path) }
  return try sha256(ofFile: path)
}

/// Asserts that `body` throws a VHDError with this problem (and field, when given).
func assertVHDError(
  _ problem: VHDError.Problem, field: String? = nil, file: StaticString = #filePath, line: UInt = #line,
  _ body: () throws -> Void
) {
  do {
    try body()
    XCTFail("expected a \(problem) error, but nothing was thrown", file: file, line: line)
  } catch let error as VHDError {
    XCTAssertEqual(error.problem, problem, "\(error)", file: file, line: line)
    if let field {
      XCTAssertTrue(error.field.hasPrefix(field), "field \(error.field) in \(error)", file: file, line: line)
    }
  } catch {
    XCTFail("expected a VHDError, got \(error)", file: file, line: line)
  }
}

/// Replaces bytes of a file in place (to damage or patch test files).
func overwrite(_ path: String, at offset: UInt64, with bytes: [UInt8]) throws {
  let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
  defer { try? handle.close() }
  try handle.seek(toOffset: offset)
  try handle.write(contentsOf: Data(bytes))
}

/// Bytes a file takes on its file system (st_blocks × 512, as `du` counts them).
func spaceOnDisk(_ path: String) throws -> UInt64 {
  var info = stat()
  guard stat(path, &info) == 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
  return UInt64(info.st_blocks) * 512
}

/// A raw image of `size` bytes in which about `share` of the 4 KiB pages hold random bytes and the
/// rest are zeros, plus pages with a single non-zero byte at their first or last byte; `zeroBlocks`
/// (2 MiB blocks) hold nothing at all. Returns the bytes and how many pages hold data.
func scatteredImage(size: Int, share: Double, zeroBlocks: Set<Int> = [], seed: UInt64) -> (
  bytes: [UInt8], dataPages: Int
) {
  var random = SeededBytes(seed: seed)
  var bytes = [UInt8](repeating: 0, count: size)
  var dataPages = 0
  for page in 0..<((size + 4095) / 4096) where !zeroBlocks.contains((page * 4096) >> 21) {
    let start = page * 4096
    let end = min(start + 4096, size)
    let roll = random.int(0..<10_000)
    if roll < Int(share * 10_000) {
      bytes.replaceSubrange(start..<end, with: random.bytes(end - start))
    } else if roll < Int(share * 10_000) + 20 {
      bytes[roll % 2 == 0 ? start : end - 1] = 0x7f
    } else {
      continue
    }
    dataPages += 1
  }
  return (bytes, dataPages)
}
