import Foundation
import VHD

/// Who else reads a disk file, so that the disk verbs (`disk write`, `disk merge`) do not modify it
/// in place behind their backs: a library's template, which every linked clone reads through, or
/// a parent that differencing disks beside it depend on, or a VM's disk whose chain a library's
/// catalog records (a merge behind its back changes what a checkpoint holds).
///
/// Both are found from the files alone, cheaply: the disk verbs work on paths, without a library
/// (and without its lock).
public struct DiskReaders: Equatable, Sendable {
  /// The disk that would be modified.
  public var path: String
  /// The library folder whose `templates/` holds the disk, when it is a template.
  public var templateOf: String?
  /// Differencing disks beside it whose parent it is.
  public var children: [String]
  public var isEmpty: Bool { templateOf == nil && children.isEmpty }

  /// The library and VM that own the disk at `path`, when it lies in a library's `vms/NAME/`.
  public static func owner(of path: String) -> (library: String, vm: String)? {
    let folder = URL(fileURLWithPath: absolutePath(path)).resolvingSymlinksInPath().deletingLastPathComponent()
    let vms = folder.deletingLastPathComponent()
    let root = vms.deletingLastPathComponent()
    guard vms.lastPathComponent == "vms",
      FileManager.default.fileExists(atPath: root.appendingPathComponent("catalog.sqlite").path)
    else { return nil }
    return (root.path, folder.lastPathComponent)
  }

  /// The readers of the disk at `path`; `except` leaves out a disk the caller is dealing with (the
  /// child being merged into it).
  public init(of path: String, except: String? = nil) throws {
    self.path = absolutePath(path)
    let resolved = URL(fileURLWithPath: self.path).resolvingSymlinksInPath()
    let folder = resolved.deletingLastPathComponent()
    let root = folder.deletingLastPathComponent()
    // A library's templates live in `templates/` beside its catalog (Library.init makes both).
    if folder.lastPathComponent == "templates",
      FileManager.default.fileExists(atPath: root.appendingPathComponent("catalog.sqlite").path)
    {
      templateOf = root.path
    }
    let skipped = except.map { URL(fileURLWithPath: absolutePath($0)).resolvingSymlinksInPath().path }
    children = try DiskChain.children(ofDiskAt: self.path).filter {
      URL(fileURLWithPath: $0).resolvingSymlinksInPath().path != skipped
    }
  }

  /// Why `action` (for example "write to", "merge into") must not touch the disk, and what to do.
  public func refusal(_ action: String) -> LabKitError {
    var reasons: [String] = []
    if let templateOf {
      reasons.append(
        "it is a template of the library \(templateOf), the read-only parent its linked clones share, and every clone would change"
      )
    }
    if !children.isEmpty {
      reasons.append(
        "other disks read it and would change: \(children.joined(separator: ", ")) (merge or remove them first)")
    }
    return LabKitError(
      .conflict,
      "refusing to \(action) \(path): \(reasons.joined(separator: "; ")); pass --force to do it anyway")
  }
}
