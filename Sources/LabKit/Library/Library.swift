import Foundation
import VHD

/// A vmlab library: a folder holding the catalog (`catalog.sqlite`), the VM folders with their VHD
/// files (`vms/NAME/`), and the templates linked clones share (`templates/`).
///
/// Every method is safe to call from several threads: operations on one VM are serialised, and
/// operations on different VMs run in parallel (DESIGN.md rule 6).
public final class Library: @unchecked Sendable {
  /// The library folder, absolute.
  public let root: String
  /// The hosts that run the VMs, by name; each VM names its own.
  public let hosts: HostRegistry
  let catalog: Catalog
  private let lock: LibraryLock
  /// Operations on one VM, queued or not, run in the order they were asked.
  let vmOrder = VMOrder()
  /// Test hook: called at named steps of multi-file operations; throwing there simulates a failure
  /// (or, with `SimulatedCrash`, a process that died on the spot).
  public var faultInjection: ((String) throws -> Void)?
  lazy var jobs = JobRunner(library: self)

  /// Operations a failure left half done that opening could not settle; each blocks only its own
  /// VMs (see `check()`).
  public internal(set) var unsettledOperations: [UnsettledOperation] = []

  /// Opens (creating on first use) the library at `path`; finishes or rolls back any operation a
  /// crash left behind. `wait` waits for another process that holds the library instead of failing.
  /// `waiting` is told who holds the library when `wait` has to wait for it.
  public convenience init(
    at path: String, hosts: HostRegistry, wait: Bool = false, waiting: (String) -> Void = { _ in }
  ) throws {
    let root = try Library.prepareFolder(path)
    try self.init(root: root, lock: try LibraryLock(folder: root, wait: wait, waiting: waiting), hosts: hosts)
  }

  /// Opens the library in `root` (an absolute path), already holding its lock.
  init(root: String, lock: LibraryLock, hosts: HostRegistry) throws {
    self.root = root
    self.hosts = hosts
    self.lock = lock
    catalog = try Catalog(path: root + "/catalog.sqlite")
    try settleWhatOthersLeft()
  }

  /// Runs each time this process takes the library lock: what a process that died while it held
  /// the library left half done is finished or rolled back.
  private func settleWhatOthersLeft() throws {
    removeTemporaryFiles()
    unsettledOperations = try recover()
    try removeUnreferencedMemoryFiles()
    try reconcilePowerStates()
    // Jobs that were running when a process ended will not finish. Looked for first: most
    // openings find none, and then write nothing.
    guard try catalog.read({ tx in try tx.hasUnfinishedJobs() }) else { return }
    try catalog.write { tx in try tx.failUnfinishedJobs(reason: "interrupted: the vmlab process ended", at: Date()) }
  }

  /// Lets other vmlab processes use the library while this one waits for a person (the REPL at its
  /// prompt): releases the library lock, unless a job of this process is still queued or running.
  /// Returns whether it did; `resumeAfterIdle` must come before the next operation.
  @discardableResult
  public func releaseWhileIdle() -> Bool {
    guard !jobs.hasPending else { return false }
    lock.release()
    return true
  }

  /// Takes the library lock back after `releaseWhileIdle`, waiting for a process that uses the
  /// library now (`waiting` is called first, so a person is told why nothing happens), and settles
  /// what another process may have left half done.
  public func resumeAfterIdle(waiting: (String) -> Void = { _ in }) throws {
    guard !lock.isHeld else { return }
    if try !lock.acquire(wait: false) {
      waiting(lock.holder)
      _ = try lock.acquire(wait: true)
    }
    try settleWhatOthersLeft()
  }

  /// Makes the library folder and its `vms` and `templates` folders on first use; returns its
  /// absolute path.
  static func prepareFolder(_ path: String) throws -> String {
    let root = URL(fileURLWithPath: path).standardizedFileURL.path
    do {
      try FileManager.default.createDirectory(atPath: root + "/vms", withIntermediateDirectories: true)
      try FileManager.default.createDirectory(atPath: root + "/templates", withIntermediateDirectories: true)
    } catch {
      throw LabKitError(.failed, "cannot create the library folder \(root): \(error.localizedDescription)")
    }
    return root
  }

  /// Waits for the jobs this process queued, closes the catalog and releases the library lock, so
  /// that another `Library` — in this process or another — can open the folder at once. Dropping
  /// the object does the same eventually, but a job thread can keep it alive a moment after its
  /// work ends. The library cannot be used afterwards: its methods throw.
  public func close() throws {
    jobs.waitForAll()
    defer { lock.release() }
    try catalog.close()
  }

  /// The host kind new VMs get (a library setting; `virtual-server` unless changed).
  public var defaultHostKind: HostKind {
    (try? catalog.read { tx in try storedHostKind(tx) }) ?? .virtualServer
  }

  /// The setting, read inside a transaction that is already open.
  func storedHostKind(_ tx: CatalogTransaction) throws -> HostKind {
    try tx.setting("hostKind").flatMap(HostKind.init(rawValue:)) ?? .virtualServer
  }

  public func setDefaultHostKind(_ kind: HostKind) throws {
    try catalog.write { tx in try tx.setSetting("hostKind", to: kind.rawValue) }
  }

  // MARK: Paths

  /// The absolute path of a catalog path (relative to the library).
  func absolute(_ relative: String) -> String { root + "/" + relative }

  func relative(_ absolute: String) -> String {
    absolute.hasPrefix(root + "/") ? String(absolute.dropFirst(root.count + 1)) : absolute
  }

  func vmFolder(_ name: String) -> String { "vms/" + name }

  // MARK: Serialisation

  /// Runs `body` in the VM's turn: one operation at a time per VM, in the order they were asked
  /// (a job in the order it was submitted). An operation a failure left half done on the VM is
  /// finished (or rolled back) first.
  /// `deciding` names a prepared operation this call decides, which must not stand in its way.
  func withVMLock<T>(_ name: String, deciding: Int64? = nil, _ body: () throws -> T) throws -> T {
    try vmOrder.withTurn(NameRules.key(name)) {
      try settlePending(vm: name, except: deciding)
      return try body()
    }
  }

  /// Holds several VMs' locks at once, always taken in the same (sorted) order.
  func withVMLocks<T>(_ names: [String], deciding: Int64? = nil, _ body: () throws -> T) throws -> T {
    guard let first = names.first else { return try body() }
    return try withVMLock(first, deciding: deciding) {
      try withVMLocks(Array(names.dropFirst()), deciding: deciding, body)
    }
  }

  func fault(_ step: String) throws {
    try faultInjection?(step)
  }
}

/// A simulated process death in a test: the operation stops without cleaning up.
public struct SimulatedCrash: Error {
  public init() {}
}
