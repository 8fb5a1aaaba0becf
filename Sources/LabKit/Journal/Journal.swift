import Foundation
import VHD

extension Library {
  /// Runs an operation that touches several files all-or-nothing (DESIGN.md rule 1):
  /// 1. the journal records the files it will create and the files it will delete;
  /// 2. `files` creates the new files (nothing the catalog references is changed);
  /// 3. one transaction applies `commit` and marks the journal entry committed;
  /// 4. the old files are deleted and the entry removed.
  /// The VMs' manifests are the caller's next step (`writeManifests`), not a side effect of this.
  /// A failure before the commit removes the new files; a crash at any step is finished or rolled
  /// back by `recover()` when the library is next opened.
  func journaled<T>(
    _ operation: String, vm: String, creates: [String], deletes: [String], redo: String? = nil,
    files: () throws -> Void, commit: (CatalogTransaction) throws -> T
  ) throws -> T {
    let entry = try beginJournalEntry(operation, vm: vm, creates: creates, deletes: deletes, redo: redo)
    let result: T
    do {
      try fault("\(operation):journaled")
      try files()
      try syncToDisk(creates)
      try fault("\(operation):files")
      result = try commitJournalEntry(entry, commit)
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      guard redo != nil else {
        try? rollBack(entryID: entry.id!, creates: creates)
        throw error
      }
      // A redo operation may already have changed files the catalog uses: it must be finished, not
      // undone. Its entry stays; the next operation on the VM (or the next opening) finishes it
      // before anything else touches the VM's disks.
      throw LabKitError(
        .failed,
        "the \(operation) of VM '\(vm)' was interrupted (\(error)); nothing the VM reads changed, and it is finished before the next operation on the VM or when the library is next opened"
      )
    }
    try fault("\(operation):committed")
    try finish(entryID: entry.id!, deletes: deletes)
    return result
  }

  // MARK: The steps, for an operation in two phases

  /// Step 1: records the operation, the files it will create and the files it will delete.
  func beginJournalEntry(
    _ operation: String, vm: String, creates: [String], deletes: [String], redo: String? = nil
  ) throws -> JournalRecord {
    var entry = JournalRecord(
      id: nil, operation: operation, vmName: vm, created: Date(), creates: creates, deletes: deletes, committed: false,
      redo: redo)
    try catalog.write { tx in try tx.beginJournalEntry(&entry) }
    return entry
  }

  /// Phase one's end: the new files are on stable storage. For an operation `decidedElsewhere` (a
  /// cluster's), its commit is kept beside them, so that the decision can be carried out even by a
  /// later process; one decided here goes straight on, and a crash before its commit rolls it back.
  func endFirstPhase<Commit: Encodable>(_ entry: JournalRecord, commit: Commit, decidedElsewhere: Bool) throws {
    try syncToDisk(entry.creates)
    try fault("\(entry.operation):files")
    guard decidedElsewhere else { return }
    let text = String(decoding: try JSONEncoder().encode(commit), as: UTF8.self)
    try catalog.write { tx in try tx.markJournalEntryPrepared(id: entry.id!, commit: text) }
    try fault("\(entry.operation):prepared")
  }

  /// Step 3: one transaction applies the commit and marks the entry committed.
  func commitJournalEntry<T>(_ entry: JournalRecord, _ commit: (CatalogTransaction) throws -> T) throws -> T {
    try catalog.write { tx -> T in
      let result = try commit(tx)
      try tx.markJournalEntryCommitted(id: entry.id!)
      return result
    }
  }

  /// Step 4 after a commit: the old files go and the entry with them.
  /// `alongside` (the manifests, say) runs while the old files are deleted, which mostly waits on
  /// the disk (on a file system mounted with `discard`, forty unlinks took longer than twenty
  /// manifests); the entry goes once both are done.
  func finishJournalEntry(_ entry: JournalRecord, while alongside: () -> Void = {}) throws {
    try finish(entryID: entry.id!, deletes: entry.deletes, while: alongside)
  }

  /// Instead of a commit: the new files go and the entry with them.
  func rollBackJournalEntry(_ entry: JournalRecord) throws {
    try rollBack(entryID: entry.id!, creates: entry.creates)
  }

  /// Syncs the files an operation made, and the folders that name them, before the commit that
  /// makes the catalog name them: after a power cut the catalog never names a file whose contents
  /// did not reach the disk. Several at a time (the file system groups the syncs), each folder once.
  func syncToDisk(_ created: [String]) throws {
    let paths = created.map(absolute)
    let folders = Set(paths.map { ($0 as NSString).deletingLastPathComponent })
    for outcome in parallel(
      paths + folders.sorted(),
      { path in
        // A path the operation did not make after all (it is journaled before the files exist).
        guard let file = SystemFile.openExisting(path) else { return }
        defer { file.close() }
        try file.sync(what: "the new file")
      })
    {
      if let failure = outcome.failure { throw failure }
    }
  }

  private func rollBack(entryID: Int64, creates: [String]) throws {
    removeFiles(creates)
    try catalog.write { tx in try tx.deleteJournalEntry(id: entryID) }
  }

  private func finish(entryID: Int64, deletes: [String], while alongside: () -> Void = {}) throws {
    if deletes.isEmpty {
      alongside()
    } else {
      let deleted = DispatchGroup()
      DispatchQueue.global().async(group: deleted) { [self] in removeFiles(deletes) }
      alongside()
      deleted.wait()
    }
    try catalog.write { tx in try tx.deleteJournalEntry(id: entryID) }
  }

  func removeFileIfPresent(_ path: String) {
    if FileManager.default.fileExists(atPath: path) {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  /// Finishes committed operations, completes the ones that must roll forward, and rolls back the
  /// rest, as a crash left them. One that cannot be settled now (a file of its VM is missing, say)
  /// stays in the journal and is returned: it blocks its own VMs, never the library.
  func recover() throws -> [UnsettledOperation] {
    let entries = try catalog.read { tx in try tx.journalEntries() }
    var unsettled: [UnsettledOperation] = []
    for entry in entries {
      do {
        try settle(entry)
      } catch let waiting as PreparedOperationWaits {
        unsettled.append(
          UnsettledOperation(
            operation: entry.operation, vms: entry.vmNames, reason: waiting.reason, preparedOperationID: entry.id))
      } catch {
        unsettled.append(UnsettledOperation(operation: entry.operation, vms: entry.vmNames, reason: "\(error)"))
      }
    }
    return unsettled
  }

  /// Finishes or rolls back the operations a failure left half done on one VM. Runs, holding the
  /// VM's lock, before every operation on it: an interrupted merge must be finished before anything
  /// else changes the VM's chain, or finishing it later would undo that change.
  func settlePending(vm name: String, except decided: Int64? = nil) throws {
    let entries = try catalog.read { tx in try tx.journalEntries(involvingVM: name, excluding: decided) }
    for entry in entries {
      do {
        try settle(entry)
      } catch let waiting as PreparedOperationWaits {
        throw UnsettledOperation(
          operation: entry.operation, vms: entry.vmNames, reason: waiting.reason, preparedOperationID: entry.id
        ).error
      } catch {
        throw UnsettledOperation(operation: entry.operation, vms: entry.vmNames, reason: "\(error)").error
      }
    }
  }

  private func settle(_ entry: JournalRecord) throws {
    if !entry.committed && entry.prepared != nil {
      // Only its decision settles it: the other hosts of the operation may have committed theirs.
      throw PreparedOperationWaits()
    }
    if entry.committed {
      try finish(entryID: entry.id!, deletes: entry.deletes)
    } else if let redo = entry.redo {
      try completeRedo(entry: entry, redo: redo)
    } else {
      try rollBack(entryID: entry.id!, creates: entry.creates)
    }
    writeManifests(vms: entry.vmNames)
  }
}

/// When a committed operation's last step runs: removing the files it replaced, its journal entry,
/// and writing its VMs' manifests. None of it changes what the VMs are (the catalog says that from
/// the commit on), so a process that answers for the commit, a cluster agent, can do it once it has
/// answered: `.later` leaves the committed entry for `Library.tidy(vms:)`, and the next operation
/// on any of its VMs or the next open of the library finishes it first as after a crash.
public enum Tidying: Sendable, Equatable {
  case now
  case later
}

/// An operation a failure left half done that cannot be finished yet, usually because a file it
/// needs is missing. It keeps its VMs from changing until it is settled; `library repair` rebuilds
/// them from their files.
public struct UnsettledOperation: Equatable, Sendable {
  public var operation: String
  public var vms: [String]
  public var reason: String
  /// Set for an operation prepared in two phases that waits for its decision
  /// (`Library.decidePrepared(operation:commit:)`).
  public var preparedOperationID: Int64? = nil

  var error: LabKitError {
    LabKitError(preparedOperationID == nil ? .inconsistent : .invalidState, description)
  }

  public var description: String {
    let who = vms.count == 1 ? "VM '\(vms[0])' has" : "VMs \(vms.map { "'\($0)'" }.joined(separator: ", ")) have"
    let them = vms.count == 1 ? "it" : "them"
    if let id = preparedOperationID {
      return
        "\(who) a prepared \(operation) (operation \(id)) that waits for its decision; nothing else is done to \(them) until the cluster commits or rolls it back (by hand, when the cluster's decision is known or the cluster is gone: `vmlab library decide \(id) --commit` or `--roll-back`)"
    }
    return
      "\(who) an unfinished \(operation) that cannot be finished yet (\(reason)); nothing else is done to \(them) until it is: put the missing file back, or `vmlab library repair` rebuilds the catalog from the files"
  }
}

/// Settling a prepared operation's entry without its decision: refused.
struct PreparedOperationWaits: Error {
  var reason: String { "prepared, waiting for its decision" }
}
