import Foundation
import LabKit

/// A program an image build runs (apt-get, dpkg-deb, depmod, readelf, cpio, gzip, mke2fs), with
/// the Debian package that provides it, so a missing program is an error that says what to install.
struct BuildTool: Sendable {
  let name: String
  let package: String

  static let aptGet = BuildTool(name: "apt-get", package: "apt")
  static let aptCache = BuildTool(name: "apt-cache", package: "apt")
  static let dpkgDeb = BuildTool(name: "dpkg-deb", package: "dpkg")
  static let depmod = BuildTool(name: "depmod", package: "kmod")
  static let readelf = BuildTool(name: "readelf", package: "binutils")
  static let cpio = BuildTool(name: "cpio", package: "cpio")
  static let gzip = BuildTool(name: "gzip", package: "gzip")
  static let mke2fs = BuildTool(name: "mke2fs", package: "e2fsprogs")
  static let xz = BuildTool(name: "xz", package: "xz-utils")
  static let zstd = BuildTool(name: "zstd", package: "zstd")
  static let sha256sum = BuildTool(name: "sha256sum", package: "coreutils")

  /// Every program `vmlab image build` needs, checked before anything is downloaded.
  static let forImages: [BuildTool] = [aptGet, aptCache, dpkgDeb, depmod, readelf, cpio, gzip, mke2fs]

  /// The program's path: PATH, then the system folders (mke2fs and depmod live in sbin, which a
  /// user's PATH often lacks).
  func path() throws -> String {
    for folder in ["/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
      return "\(folder)/\(name)"
    }
    return try QEMUInstallation.program(name, package: package)
  }

  /// What a finished run printed and how it ended.
  struct Output {
    var status: Int32
    var standardOutput: Data
    var standardError: String
    var text: String { String(decoding: standardOutput, as: UTF8.self) }
  }

  /// Runs the program to completion. Output goes through files, not pipes, so a chatty program
  /// cannot fill a pipe and stall; `outputFile` keeps standard output there (a cpio archive).
  @discardableResult
  func run(
    _ arguments: [String], in folder: String? = nil, input: Data? = nil, outputFile: String? = nil,
    environment: [String: String] = [:], failureIsError: Bool = true
  ) throws -> Output {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try path())
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vmlab-tool-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outputPath = outputFile ?? scratch.appendingPathComponent("stdout").path
    let errorPath = scratch.appendingPathComponent("stderr").path
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    defer {
      try? output.close()
      try? errors.close()
    }
    process.standardOutput = output
    process.standardError = errors
    if let input {
      let inputPath = scratch.appendingPathComponent("stdin").path
      _ = FileManager.default.createFile(atPath: inputPath, contents: input)
      process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
    } else {
      process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    process.waitUntilExit()
    let result = Output(
      status: process.terminationStatus,
      standardOutput: outputFile == nil ? (FileManager.default.contents(atPath: outputPath) ?? Data()) : Data(),
      standardError: String(decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self))
    if failureIsError && result.status != 0 {
      throw LabKitError(
        .failed,
        "\(name) \(arguments.prefix(4).joined(separator: " ")) failed (exit \(result.status)): \(result.lastErrorLines)"
      )
    }
    return result
  }
}

extension BuildTool.Output {
  /// The last few lines a program wrote to stderr, without apt's note about its sandbox.
  var lastErrorLines: String {
    let lines = standardError.split(separator: "\n").filter { !$0.contains("unsandboxed as root") }
    return lines.suffix(3).joined(separator: " | ")
  }
}
