import Foundation
import LabKit

/// The modules of an unpacked Debian kernel package and the order to load them in.
///
/// Debian's package ships no `modules.dep` (its postinst runs depmod), so `depmod -b` writes one
/// into the unpacked tree; the order then comes from `modules.dep`, `modules.softdep` (ext4 asks
/// for crc32c first) and `modules.alias`, never from a chain written down here that the next
/// kernel would break. Built-in drivers (`modules.builtin`) need nothing loaded.
struct KernelModules {
  /// The unpacked package: `<tree>/lib/modules/<version>/`.
  let tree: String
  let version: String

  struct Module: Equatable {
    var name: String
    /// Relative to `lib/modules/<version>/`, e.g. `kernel/drivers/virtio/virtio_ring.ko`.
    var path: String
    /// Asked for only through a soft dependency or an alias with several candidates (crc32c_intel
    /// needs SSE 4.2, which TCG's default processor lacks): a failure to load it is no error.
    var optional: Bool
  }

  private var dependencies: [String: (path: String, needs: [String])] = [:]
  private var builtin: Set<String> = []
  private var softPre: [String: [String]] = [:]
  private var aliases: [String: [String]] = [:]

  var folder: String { "\(tree)/lib/modules/\(version)" }

  /// Runs depmod over the unpacked tree (its one kernel version) and reads what it wrote.
  init(unpackedKernel tree: String) throws {
    self.tree = tree
    let versions = (try? FileManager.default.contentsOfDirectory(atPath: "\(tree)/lib/modules")) ?? []
    guard versions.count == 1, let version = versions.first else {
      throw LabKitError(
        .failed, "the kernel package unpacked in \(tree) holds \(versions.count) module folders, not one")
    }
    self.version = version
    try BuildTool.depmod.run(["-b", tree, version])
    try read()
  }

  /// Reads the module tables of an already indexed tree (tests hand it small ones).
  init(tree: String, version: String) throws {
    self.tree = tree
    self.version = version
    try read()
  }

  static func name(ofPath path: String) -> String {
    var file = (path as NSString).lastPathComponent
    for suffix in [".xz", ".zst", ".gz"] where file.hasSuffix(suffix) { file.removeLast(suffix.count) }
    if file.hasSuffix(".ko") { file.removeLast(3) }
    return file.replacingOccurrences(of: "-", with: "_")
  }

  private mutating func read() throws {
    func lines(_ file: String, required: Bool) throws -> [Substring] {
      guard let text = try? String(contentsOfFile: "\(folder)/\(file)", encoding: .utf8) else {
        if required { throw LabKitError(.failed, "\(folder)/\(file) is missing; depmod did not index the kernel") }
        return []
      }
      return text.split(separator: "\n")
    }
    for line in try lines("modules.dep", required: true) {
      guard let colon = line.firstIndex(of: ":") else { continue }
      let path = String(line[..<colon])
      let needs = line[line.index(after: colon)...].split(separator: " ").map { Self.name(ofPath: String($0)) }
      dependencies[Self.name(ofPath: path)] = (path, needs)
    }
    for line in try lines("modules.builtin", required: false) { builtin.insert(Self.name(ofPath: String(line))) }
    for line in try lines("modules.softdep", required: false) {
      let words = line.split(separator: " ").map(String.init)
      guard words.count >= 2, words[0] == "softdep" else { continue }
      var pre: [String] = []
      var inPre = false
      for word in words.dropFirst(2) {
        if word.hasSuffix(":") {
          inPre = word == "pre:"
        } else if inPre {
          pre.append(word)
        }
      }
      softPre[Self.name(ofPath: words[1]), default: []] += pre
    }
    for line in try lines("modules.alias", required: false) {
      let words = line.split(separator: " ").map(String.init)
      guard words.count == 3, words[0] == "alias" else { continue }
      aliases[words[1], default: []].append(Self.name(ofPath: words[2]))
    }
  }

  /// The modules to load, each after the ones it needs, for the named modules or aliases.
  func loadOrder(for names: [String]) throws -> [Module] {
    var order: [Module] = []
    var visiting: Set<String> = []
    func visit(_ requested: String, optional: Bool) throws {
      let name = requested.replacingOccurrences(of: "-", with: "_")
      if builtin.contains(name) { return }
      if let index = order.firstIndex(where: { $0.name == name }) {
        // First reached through a soft dependency, now needed for real: so is what it needs.
        if !optional && order[index].optional {
          order[index].optional = false
          for need in dependencies[name]?.needs ?? [] { try visit(need, optional: false) }
        }
        return
      }
      guard let entry = dependencies[name] else {
        if let candidates = aliases[requested] ?? aliases[name] {
          for candidate in candidates { try visit(candidate, optional: optional || candidates.count > 1) }
          return
        }
        if optional { return }
        throw LabKitError(
          .notFound,
          "kernel \(version) has no module '\(requested)' (not in modules.dep, modules.builtin or modules.alias)")
      }
      guard visiting.insert(name).inserted else { return }
      for soft in softPre[name] ?? [] { try visit(soft, optional: true) }
      // modules.dep lists what a module needs so that the last one loads first (as modprobe does).
      for need in entry.needs.reversed() { try visit(need, optional: optional) }
      visiting.remove(name)
      order.append(Module(name: name, path: entry.path, optional: optional))
    }
    for name in names { try visit(name, optional: false) }
    return order
  }
}
