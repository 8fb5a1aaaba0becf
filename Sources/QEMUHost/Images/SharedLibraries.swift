import Foundation
import LabKit

/// The shared libraries a program needs, taken from Debian packages without installing them.
///
/// Resolved `ldd`-style from the binary, not by copying every package of its Depends closure:
/// the Depends closure of qemu-guest-agent reaches perl-base and init-system-helpers (through
/// Pre-Depends), dozens of megabytes no guest runs. So the program's `NEEDED` entries (readelf)
/// are looked up in the packages unpacked so far; while some are missing, the Depends of the
/// packages that supplied something (the program's own package first) are downloaded and
/// unpacked, and the search goes on. The Depends graph says where to look, the binary says what
/// to take, and a library renamed in the next Debian release is still found.
struct SharedLibraries {
  let packages: DebianPackages
  /// Each package is unpacked into `<work>/<package name>/`.
  let work: String

  struct Resolution {
    /// The program's dynamic loader, as its `PT_INTERP` names it (`/lib64/ld-linux-x86-64.so.2`).
    var interpreter: String?
    /// soname → the library's file (symbolic links followed) in its unpacked package.
    var libraries: [String: String]
    /// The packages that supplied a library, in the order they were found.
    var suppliers: [DebianPackage]
  }

  /// The folders of an unpacked package where the loader looks (Debian's multiarch ones first).
  static let libraryFolders = [
    "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib",
  ]

  func resolve(program: String, of root: DebianPackage) throws -> Resolution {
    var unpacked: [String: DebianPackage] = [root.name: root]
    var index: [String: (file: String, package: String)] = [:]
    try indexLibraries(of: root, into: &index)
    var expanded: Set<String> = []
    var supplierNames: [String] = [root.name]
    while true {
      var libraries: [String: String] = [:]
      var missing: [String] = []
      var queue = try Self.needed(by: program)
      while let soname = queue.popLast() {
        guard libraries[soname] == nil, !missing.contains(soname) else { continue }
        guard let found = index[soname] else {
          missing.append(soname)
          continue
        }
        libraries[soname] = found.file
        if !supplierNames.contains(found.package) { supplierNames.append(found.package) }
        queue += try Self.needed(by: found.file)
      }
      if missing.isEmpty {
        return Resolution(
          interpreter: try Self.interpreter(of: program), libraries: libraries,
          suppliers: supplierNames.compactMap { unpacked[$0] })
      }
      let toExpand = supplierNames.filter { !expanded.contains($0) }
      guard !toExpand.isEmpty else {
        throw LabKitError(
          .notFound,
          "\((program as NSString).lastPathComponent) needs \(missing.sorted().joined(separator: ", ")), which no package its package depends on provides"
        )
      }
      for name in toExpand {
        expanded.insert(name)
        for dependency in unpacked[name]?.depends ?? [] where unpacked[dependency] == nil {
          let package = try packages.fetch(dependency)
          try packages.extract(package, into: "\(work)/\(package.name)")
          unpacked[dependency] = package
          try indexLibraries(of: package, into: &index)
        }
      }
    }
  }

  /// Adds every file of the package's library folders whose name looks like a soname.
  private func indexLibraries(
    of package: DebianPackage, into index: inout [String: (file: String, package: String)]
  ) throws {
    let tree = "\(work)/\(package.name)"
    for folder in Self.libraryFolders {
      let path = "\(tree)/\(folder)"
      guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { continue }
      for name in names.sorted() where name.contains(".so") && index[name] == nil {
        if let file = Self.resolveLink("\(path)/\(name)", inside: tree) {
          index[name] = (file, package.name)
        }
      }
    }
  }

  /// Follows symbolic links inside an unpacked tree (an absolute target is taken from the tree's
  /// root, as it will be in the guest); nil when the chain leaves the tree or does not end in a file.
  static func resolveLink(_ path: String, inside tree: String) -> String? {
    var current = path
    for _ in 0..<16 {
      guard let attributes = try? FileManager.default.attributesOfItem(atPath: current) else { return nil }
      if attributes[.type] as? FileAttributeType != .typeSymbolicLink {
        return attributes[.type] as? FileAttributeType == .typeRegular ? current : nil
      }
      guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return nil }
      let next =
        target.hasPrefix("/")
        ? tree + target : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
      let normalized = (next as NSString).standardizingPath
      guard normalized.hasPrefix(tree + "/") else { return nil }
      current = normalized
    }
    return nil
  }

  /// The sonames in the file's dynamic section (`readelf -d`: `(NEEDED) Shared library: [libc.so.6]`).
  static func needed(by file: String) throws -> [String] {
    try BuildTool.readelf.run(["-d", "-W", file]).text.split(separator: "\n").compactMap { line in
      guard line.contains("(NEEDED)"), let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]"),
        open < close
      else { return nil }
      return String(line[line.index(after: open)..<close])
    }
  }

  /// The program interpreter a dynamic executable asks for, nil for a static one.
  static func interpreter(of file: String) throws -> String? {
    let text = try BuildTool.readelf.run(["-l", "-W", file]).text
    guard let range = text.range(of: "Requesting program interpreter: ") else { return nil }
    let rest = text[range.upperBound...]
    return rest.firstIndex(of: "]").map { String(rest[..<$0]) }
  }
}
