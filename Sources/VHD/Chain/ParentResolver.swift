import Foundation

/// Finds the file a differencing disk's header points to.
///
/// Order (VHD-FORMAT.md §6): the relative `W2ru` locator against the child's folder, the absolute
/// `W2ku`, a `MacX` URL, then the bare parent name in the child's folder. A candidate is the parent
/// only when its unique id is the one the child expects.
struct ParentResolver {
  let options: OpenOptions

  /// The candidate paths, most trusted first, without duplicates.
  func candidates(for child: VirtualDisk) throws -> [String] {
    guard let header = child.header else { return [] }
    let folder = (child.path as NSString).deletingLastPathComponent
    var paths: [String] = []
    func add(_ path: String) {
      let absolute = absolutePath(path.hasPrefix("/") ? path : folder + "/" + path)
      if !paths.contains(absolute) { paths.append(absolute) }
    }
    let byPreference: [ParentLocator.Platform] = [.relativeWindows, .absoluteWindows, .macOSURL]
    for platform in byPreference {
      for locator in header.parentLocators where locator.platform == platform && locator.dataLength > 0 {
        let data = try child.file.read(
          at: locator.dataOffset, count: Int(locator.dataLength), field: "header.parentLocator(\(platform))")
        guard let text = ParentLocator.decodePath(data, platform: platform), !text.isEmpty else { continue }
        let path = platform == .macOSURL ? text : posixPath(fromWindows: text)
        // A Windows drive path (C:\...) names nothing on this system; the bare name below may.
        if platform == .absoluteWindows && !path.hasPrefix("/") { continue }
        add(path)
      }
    }
    let name = header.parentUnicodeName.split(whereSeparator: { $0 == "\\" || $0 == "/" }).last.map(String.init)
    if let name, !name.isEmpty { add(name) }
    return paths
  }

  /// Opens the parent of `child`: the first candidate that exists and carries the expected unique id.
  func openParent(of child: VirtualDisk) throws -> VirtualDisk {
    guard let header = child.header else {
      throw VHDError(path: child.path, field: "header", .missingParent, "not a differencing disk")
    }
    let candidates = try self.candidates(for: child)
    var mismatches: [String] = []
    var refused: [String] = []
    for candidate in candidates {
      if let root = options.parentSearchRoot, !isInside(candidate, folder: root) {
        refused.append(candidate)
        continue
      }
      guard FileManager.default.fileExists(atPath: candidate) else { continue }
      let parent = try VirtualDisk.open(candidate, options: options)
      if parent.uniqueID == header.parentUniqueID {
        return parent
      }
      mismatches.append("\(candidate) has unique id \(parent.uniqueID)")
      parent.close()
    }
    if !mismatches.isEmpty {
      throw VHDError(
        path: child.path, field: "header.parentUniqueID", .parentMismatch,
        "expects parent unique id \(header.parentUniqueID), but \(mismatches.joined(separator: "; ")); the parent was replaced or modified"
      )
    }
    if !refused.isEmpty {
      throw VHDError(
        path: child.path, field: "header.parentLocator", .missingParent,
        "the parent locators point outside \(options.parentSearchRoot ?? ""): \(refused.joined(separator: ", ")); allow that folder explicitly to follow them"
      )
    }
    let tried = candidates.isEmpty ? "the header names no parent" : "tried \(candidates.joined(separator: ", "))"
    throw VHDError(
      path: child.path, field: "header.parentLocator", .missingParent,
      "parent '\(header.parentUnicodeName)' not found (\(tried)); put the parent beside the disk")
  }
}

/// `.\dir\parent.vhd` → `./dir/parent.vhd`: Windows separators as written by Windows tools.
func posixPath(fromWindows path: String) -> String {
  path.replacingOccurrences(of: "\\", with: "/")
}

func isInside(_ path: String, folder: String) -> Bool {
  let root = absolutePath(folder)
  let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
  let resolvedRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
  return resolved.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/")
}
