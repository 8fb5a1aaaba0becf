import Foundation

/// What `library repair` rebuilt, and what it could not.
public struct RepairReport: Codable, Equatable, Sendable {
  public var vms: [String]
  public var checkpoints: Int
  public var labs: [String]
  /// Findings that lost nothing: VMs rebuilt without their manifest, the old catalog's condition.
  public var notes: [String]
  /// What could not be recovered: missing or unreadable files, folders that are not VMs. Each names
  /// the file; the files themselves are left as they were. `vmlab library repair` exits 1 with them.
  public var problems: [String]
  /// Where the catalog that was replaced went (nil when there was none).
  public var previousCatalog: String?
}

extension Library {
  /// Rebuilds the catalog from the files alone — each VM folder's manifest (`vm.json`), else its
  /// file names; the templates; the labs (`labs.json`) — whatever state the old catalog is in:
  /// garbage, truncated, half overwritten, from a newer vmlab, or missing. The new catalog is built
  /// in a file of its own and takes the old one's place by rename only when complete; the old one
  /// is kept beside it (`catalog.sqlite.corrupt-<time stamp>` when it was damaged). No VM, disk or
  /// checkpoint file is changed or deleted.
  @discardableResult
  public static func repair(at path: String, hosts: HostRegistry, wait: Bool = false) throws
    -> RepairReport
  {
    let root = try prepareFolder(path)
    let lock = try LibraryLock(folder: root, wait: wait)
    var released = false
    defer { if !released { lock.release() } }
    let catalogPath = root + "/catalog.sqlite"
    let previous = Catalog.examine(catalogPath)
    let buildingPath = root + "/catalog.sqlite.rebuilding"
    Catalog.removeFiles(at: buildingPath)
    var report: RepairReport
    do {
      let building = try Catalog(path: buildingPath)
      defer { try? building.close() }
      report = try CatalogRebuild(root: root, catalog: building, settings: previous.settings).run()
      try building.close()
    } catch {
      Catalog.removeFiles(at: buildingPath)
      throw error
    }
    switch previous {
    case .missing:
      report.notes.insert("there was no catalog; built a new one", at: 0)
    case .sound:
      break
    case .damaged(let reason, _):
      report.notes.insert("the catalog was damaged (\(reason))", at: 0)
    }
    report.previousCatalog = try Catalog.install(
      buildingPath, at: catalogPath, keepingOldAs: previous.isDamaged ? "corrupt" : "replaced")
    // Manifests again from the new catalog, so the next repair finds what this one found.
    let library = try Library(root: root, lock: lock, hosts: hosts)
    released = true
    defer { try? library.close() }
    for vm in report.vms { try? library.writeManifest(vm: vm) }
    try? library.writeLabsManifest()
    return report
  }
}
