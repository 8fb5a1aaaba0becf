import Foundation
import LabKit

/// One Debian package as an image uses it: downloaded (`apt-get download`, never installed) into
/// a cache and unpacked (`dpkg-deb -x`) into a work folder.
public struct DebianPackage: Codable, Equatable, Sendable {
  public var name: String
  public var version: String
  /// The .deb in the cache.
  var file: String
  /// Names of the packages it depends on (Depends and Pre-Depends, first alternative of each).
  var depends: [String]
}

/// Fetches Debian packages through apt's ordinary client, caching the .deb files so a rebuild
/// downloads nothing. A cached file is used only when its SHA-256 is the one apt's index names.
struct DebianPackages {
  /// `${XDG_CACHE_HOME:-~/.cache}/vmlab/debs`
  let cache: String
  /// Extra `-o` options for apt (tests point apt at an unreachable proxy to see the error).
  var aptOptions: [String] = []
  var progress: (String) -> Void = { _ in }
  /// The files `fetch` returned, shared by the copies of this value.
  private let fetched = Fetched()

  private final class Fetched {
    var files: [String] = []
  }

  static func defaultCache(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
    let base =
      environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
    return "\(base)/vmlab/debs"
  }

  private var optionArguments: [String] { aptOptions.flatMap { ["-o", $0] } }

  /// The real package a metapackage stands for: `linux-image-amd64` depends on exactly one
  /// `linux-image-<version>-amd64`, which is the kernel to take.
  func dependency(of metapackage: String, matching prefix: String) throws -> String {
    let record = try indexRecord(metapackage)
    guard let name = Self.dependencyNames(record["Depends"] ?? "").first(where: { $0.hasPrefix(prefix) }) else {
      throw LabKitError(
        .notFound, "Debian package '\(metapackage)' names no dependency starting with '\(prefix)' in apt's index")
    }
    return name
  }

  /// The package downloaded (or found in the cache, checked against apt's index).
  func fetch(_ name: String) throws -> DebianPackage {
    let record = try indexRecord(name)
    guard let version = record["Version"], let filename = record["Filename"], let sha256 = record["SHA256"] else {
      throw LabKitError(.failed, "apt's index has no version, file name or SHA-256 for Debian package '\(name)'")
    }
    try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
    let file = "\(cache)/\((filename as NSString).lastPathComponent)"
    if try Self.sha256(of: file) == sha256 {
      progress("using cached \(name) \(version)")
    } else {
      progress("downloading \(name) \(version)")
      try download(name, version: version, to: file)
      guard try Self.sha256(of: file) == sha256 else {
        try? FileManager.default.removeItem(atPath: file)
        throw LabKitError(.failed, "the download of Debian package '\(name)' does not match apt's SHA-256; try again")
      }
    }
    fetched.files.append(file)
    return DebianPackage(
      name: name, version: version, file: file,
      depends: Self.dependencyNames(record["Pre-Depends"] ?? "") + Self.dependencyNames(record["Depends"] ?? ""))
  }

  /// Unpacks the package's files into `folder` (`dpkg-deb -x`: files only, no maintainer scripts).
  func extract(_ package: DebianPackage, into folder: String) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try BuildTool.dpkgDeb.run(["-x", package.file, folder])
  }

  /// Removes the cached .debs this build did not use: other versions of its packages, and old
  /// kernels (each Debian point release brings a 70 MB one under a new package name).
  func pruneCache() {
    let used = Set(fetched.files.map { ($0 as NSString).lastPathComponent })
    let names = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
    for name in names where name.hasSuffix(".deb") && !used.contains(name) {
      try? FileManager.default.removeItem(atPath: "\(cache)/\(name)")
    }
  }

  private func download(_ name: String, version: String, to file: String) throws {
    // apt-get download writes into the current folder; a private one, then a rename, so an
    // interrupted download never leaves a partial file under the final name.
    let staging = "\(cache)/.download-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: staging) }
    let result = try BuildTool.aptGet.run(
      optionArguments + ["download", "\(name)=\(version)"], in: staging, failureIsError: false)
    let downloaded = (try? FileManager.default.contentsOfDirectory(atPath: staging))?.first { $0.hasSuffix(".deb") }
    guard result.status == 0, let downloaded else {
      throw LabKitError(
        .failed,
        "cannot download Debian package '\(name)' \(version) from the Debian mirror (\(result.lastErrorLines)); check the network and apt's sources (apt-get update), then run `vmlab image build` again"
      )
    }
    try? FileManager.default.removeItem(atPath: file)
    try FileManager.default.moveItem(atPath: "\(staging)/\(downloaded)", toPath: file)
  }

  /// The fields of the candidate version's record in apt's index (`apt-cache show`).
  private func indexRecord(_ name: String) throws -> [String: String] {
    let result = try BuildTool.aptCache.run(
      optionArguments + ["show", "--no-all-versions", name], failureIsError: false)
    let fields = Self.fields(result.text)
    guard result.status == 0, fields["Package"] != nil else {
      throw LabKitError(
        .notFound,
        "Debian package '\(name)' is not in apt's index; run `apt-get update` (or check /etc/apt/sources.list) and try again"
      )
    }
    return fields
  }

  /// The first record of a control-file text: `Field: value` lines, continuation lines joined.
  static func fields(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    var last: String?
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.isEmpty {
        if !fields.isEmpty { break }
        continue
      }
      if line.first == " " || line.first == "\t", let key = last {
        fields[key, default: ""] += "\n" + line.trimmingCharacters(in: .whitespaces)
      } else if let colon = line.firstIndex(of: ":") {
        let key = String(line[..<colon])
        fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        last = key
      }
    }
    return fields
  }

  /// Package names of a Depends field: `libc6 (>= 2.34), libglib2.0-0 (>= 2.73) | foo` gives
  /// `libc6, libglib2.0-0` (the first alternative, without versions or architecture qualifiers).
  static func dependencyNames(_ field: String) -> [String] {
    field.split(separator: ",").compactMap { clause in
      let first = clause.split(separator: "|").first ?? ""
      let name = first.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
      let bare = name.split(separator: ":").first.map(String.init) ?? ""
      return bare.isEmpty ? nil : bare
    }
  }

  /// The file's SHA-256 (coreutils' sha256sum), nil when there is no such file.
  static func sha256(of path: String) throws -> String? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    let text = try BuildTool.sha256sum.run([path]).text
    return text.split(separator: " ").first.map(String.init)
  }
}
