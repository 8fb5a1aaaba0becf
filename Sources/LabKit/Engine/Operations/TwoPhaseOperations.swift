import Foundation

// A checkpoint or restore of several VMs in two phases, for a lab spread over the hosts of a
// cluster: every host prepares (its VMs frozen, paused or stopped, every new file made and synced,
// the commit kept in its journal), and only when all have prepared does each commit; otherwise each
// rolls back. Between the phases the VMs refuse every other operation, and a crash leaves the entry
// waiting: recovery never decides on its own, since the other hosts may have committed theirs.

/// A checkpoint whose first phase is done (`Library.prepareCheckpoint`).
public struct PreparedCheckpoint {
  let entry: JournalRecord
  let commit: CheckpointCommit
  /// The VMs as phase one left them, when this process ran it (else read again from the commit).
  var work: [Library.CheckpointWork]? = nil

  /// The journal entry that holds it; `Library.decidePrepared(operation:commit:)` takes it after a
  /// crash.
  public var operationID: Int64 { entry.id! }
  public var vms: [String] { entry.vmNames }
  public var name: String { commit.name }
  /// The time stamp of its files, the same on every VM (see `CheckpointFileName`).
  public var stamp: String { commit.stamp }
}

/// What a prepared checkpoint commits, kept in its journal entry: for each VM, the frozen disk and
/// the new leaf of each slot.
struct CheckpointCommit: Codable {
  struct VM: Codable {
    var vmID: Int64
    var memoryPath: String?
    var power: Power
    var newLeaves: [NewLeaf]
  }

  /// What phase one did to a VM's power, for phase two to run it again (see `CheckpointWork`).
  struct Power: Codable {
    var wasRunning: Bool
    var online: Bool
    var freezes: Bool
    var action: PowerAction
    var pauses: Bool
    var paused: Bool
    var pauseStarted: Date
    var memorySaved: Bool
  }

  var name: String
  var description: String
  var created: Date
  var stamp: String
  var vms: [VM]
}

/// A VM's new leaf for one slot, over a frozen disk, as a commit records it.
struct NewLeaf: Codable {
  var slot: Int
  var frozenDiskID: Int64
  var path: String
  var uniqueID: String
}

extension Library {
  /// Records a VM's new leaf: the layer's row (made by `checkpointID` when a checkpoint made it)
  /// and its slot pointing at it.
  func recordNewLeaf(_ tx: CatalogTransaction, _ leaf: NewLeaf, vmID: Int64, madeBy checkpointID: Int64?) throws {
    var disk = DiskRecord(
      id: nil, path: leaf.path, uniqueID: leaf.uniqueID, parentID: leaf.frozenDiskID, vmID: vmID, slot: leaf.slot,
      role: .layer, checkpointID: checkpointID)
    try tx.insert(&disk)
    try tx.setLeaf(ofVM: vmID, slot: leaf.slot, to: disk.id!)
  }
}

/// A restore whose first phase is done (`Library.prepareRestore`).
public struct PreparedRestore {
  let entry: JournalRecord
  let commit: RestoreCommit
  /// The VMs as phase one left them, when this process ran it (else read again from the commit).
  var work: [Library.RestoreWork]? = nil

  public var operationID: Int64 { entry.id! }
  public var vms: [String] { entry.vmNames }
}

/// What a prepared restore commits, kept in its journal entry: for each VM, the checkpoint, the new
/// leaf over each frozen disk, and the layers that go.
struct RestoreCommit: Codable {
  struct VM: Codable {
    var vmID: Int64
    var checkpointID: Int64
    /// Recorded running by the commit: it ran, and boots again.
    var restart: Bool
    var power: Power
    var doomedDiskIDs: [Int64]
    var newLeaves: [NewLeaf]
  }

  var vms: [VM]

  /// What phase one did to a VM's power, for phase two (see `RestoreWork`).
  struct Power: Codable {
    var action: PowerAction
    var wasRunning: Bool
    var discardedMemory: String?
  }
}

extension Library {
  /// Phase one of a restore whose decision is taken elsewhere (see `PreparedRestore`): the VMs are
  /// stopped and the new leaves made; they stay off until `decide(_:commit:)`.
  public func prepareRestore(checkpoints ids: [Int64]) throws -> PreparedRestore {
    let names = try vmsOfRestore(ids)
    guard !names.isEmpty else { throw LabKitError(.invalidArgument, "a restore needs at least one checkpoint") }
    return try withVMLocks(names.sorted()) { try prepareLockedRestore(checkpoints: ids, decidedElsewhere: true) }
  }

  /// Phase two of a restore: commits it (the VMs then run again as a restore leaves them) or rolls
  /// it back (the new leaves go, the VMs that ran boot again on the disks they had). With
  /// `tidying: .later` a commit leaves the replaced files and the manifests for `tidy(vms:)`.
  @discardableResult
  public func decide(_ prepared: PreparedRestore, commit: Bool, tidying: Tidying = .now) throws
    -> [RestoreOutcome]
  {
    try deciding(prepared.operationID, vms: prepared.vms) {
      guard commit else {
        try rollBackPreparedRestore(prepared)
        return []
      }
      return try commitPreparedRestore(prepared, tidying: tidying)
    }
  }

  /// Finishes what commits decided with `tidying: .later` left on `vms`: the files they replaced
  /// go, the journal entries with them, and the manifests are written. The next operation on any
  /// of these VMs, and the next open of the library, would do the same first.
  public func tidy(vms names: [String]) throws {
    // Taking a VM's turn finishes the committed operations the VM is part of.
    try withVMLocks(names.sorted()) {}
  }

  /// Phase one of a checkpoint whose decision is taken elsewhere (see `PreparedCheckpoint`). The
  /// VMs stay paused or off until `decide(_:commit:)`.
  public func prepareCheckpoint(vms names: [String], name: String, description: String = "", disksOnly: Bool = false)
    throws -> PreparedCheckpoint
  {
    try checkCheckpointRequest(vms: names, name: name)
    return try withVMLocks(names.sorted()) {
      try prepareLockedCheckpoint(
        vms: names, name: name, description: description, disksOnly: disksOnly, decidedElsewhere: true)
    }
  }

  /// Phase two: commits the checkpoint on every VM (which then run again) or rolls it back (the
  /// files go, the VMs run again as they did). A VM that does not run again after a commit is named
  /// in a `.hostFailedAfterCommit` error: the checkpoint is taken all the same.
  @discardableResult
  public func decide(_ prepared: PreparedCheckpoint, commit: Bool) throws -> [CheckpointResult] {
    try deciding(prepared.operationID, vms: prepared.vms) {
      guard commit else {
        try rollBackPrepared(prepared)
        return []
      }
      let taken = try commitPrepared(prepared)
      let failures = taken.compactMap(\.hostFailure)
      if !failures.isEmpty {
        throw LabKitError(
          .hostFailedAfterCommit,
          "checkpoint '\(prepared.name)' taken on \(taken.count) VMs, but \(failures.count) did not run again: "
            + failures.map(\.message).joined(separator: "; "))
      }
      return taken.map(\.result)
    }
  }

  /// Phase two for an operation a process that ended left waiting in the journal: the same as
  /// `decide`, from the journal alone (the commit records what phase one did to each VM's power, so
  /// paused VMs continue, stopped ones start, saved memory resumes). Returns the VMs.
  @discardableResult
  public func decidePrepared(operation id: Int64, commit: Bool) throws -> [String] {
    guard let entry = try catalog.read({ tx in try tx.journalEntry(id: id) }), let text = entry.prepared,
      !entry.committed
    else {
      throw LabKitError(
        .notFound,
        "no prepared operation \(id) waits in this library (it was decided already, or never prepared here)")
    }
    let data = Data(text.utf8)
    switch entry.operation {
    case "checkpoint":
      let plan = try JSONDecoder().decode(CheckpointCommit.self, from: data)
      _ = try decide(PreparedCheckpoint(entry: entry, commit: plan), commit: commit)
    case "restore":
      let plan = try JSONDecoder().decode(RestoreCommit.self, from: data)
      _ = try decide(PreparedRestore(entry: entry, commit: plan), commit: commit)
    default:
      throw LabKitError(
        .invalidArgument, "prepared operation \(id) is a \(entry.operation), which this vmlab cannot decide")
    }
    return entry.vmNames
  }

  /// Runs a decision on prepared operation `id` holding its VMs' locks, once it is sure the
  /// operation still waits; it no longer counts as unsettled afterwards.
  private func deciding<T>(_ id: Int64, vms: [String], _ body: () throws -> T) throws -> T {
    try withVMLocks(vms.sorted(), deciding: id) {
      guard let entry = try catalog.read({ tx in try tx.journalEntry(id: id) }), entry.prepared != nil,
        !entry.committed
      else { throw LabKitError(.invalidState, "prepared operation \(id) was decided already") }
      defer { unsettledOperations.removeAll { $0.preparedOperationID == id } }
      return try body()
    }
  }
}
