import Foundation
import VHD

extension Library {
  /// Runs an operation that touches several files all-or-nothing (DESIGN.md rule 1):
  /// 1. the journal records the files it will create and the files it will delete;
  /// 2. `files` creates the new files (nothing the catalog references is changed);
  /// 3. one transaction applies `commit` and marks the journal entry committed;
  /// 4. the old files are deleted and the entry removed.
  /// The VMs' manifests are the caller's next step (`writeManifests`), not a side effect of this;
  /// `whileDeleting` runs it during step 4, beside the deletes, which mostly wait on the disk (on a
  /// file system mounted with `discard`, forty unlinks took longer than twenty manifests).
  /// A failure before the commit removes the new files; a crash at any step is finished or rolled
  /// back by `recover()` when the library is next opened.
  func journaled<T>(
    _ operation: String, vm: String, creates: [String], deletes: [String], redo: String? = nil,
    files: () throws -> Void, commit: (CatalogTransaction) throws -> T, whileDeleting: () -> Void = {}
  ) throws -> T {
    var entry = JournalRecord(
      id: nil, operation: operation, vmName: vm, created: Date(), creates: creates, deletes: deletes, committed: false,
      redo: redo)
    try catalog.write { tx in try tx.beginJournalEntry(&entry) }
    let entryID = entry.id!
    let result: T
    do {
      try fault("\(operation):journaled")
      try files()
      try syncToDisk(creates)
      try fault("\(operation):files")
      result = try catalog.write { tx -> T in
        let result = try commit(tx)
        try tx.markJournalEntryCommitted(id: entryID)
        return result
      }
    } catch let crash as SimulatedCrash {
      throw crash
    } catch {
      guard redo != nil else {
        try? rollBack(entryID: entryID, creates: creates)
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
    try finish(entryID: entryID, deletes: deletes, while: whileDeleting)
    return result
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
      } catch {
        unsettled.append(UnsettledOperation(operation: entry.operation, vms: entry.vmNames, reason: "\(error)"))
      }
    }
    return unsettled
  }

  /// Finishes or rolls back the operations a failure left half done on one VM. Runs, holding the
  /// VM's lock, before every operation on it: an interrupted merge must be finished before anything
  /// else changes the VM's chain, or finishing it later would undo that change.
  func settlePending(vm name: String) throws {
    let entries = try catalog.read { tx in try tx.journalEntries(involvingVM: name) }
    for entry in entries {
      do {
        try settle(entry)
      } catch {
        throw UnsettledOperation(operation: entry.operation, vms: entry.vmNames, reason: "\(error)").error
      }
    }
  }

  private func settle(_ entry: JournalRecord) throws {
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

/// An operation a failure left half done that cannot be finished yet, usually because a file it
/// needs is missing. It keeps its VMs from changing until it is settled; `library repair` rebuilds
/// them from their files.
public struct UnsettledOperation: Equatable, Sendable {
  public var operation: String
  public var vms: [String]
  public var reason: String

  var error: LabKitError {
    LabKitError(.inconsistent, description)
  }

  public var description: String {
    let who = vms.count == 1 ? "VM '\(vms[0])' has" : "VMs \(vms.map { "'\($0)'" }.joined(separator: ", ")) have"
    return
      "\(who) an unfinished \(operation) that cannot be finished yet (\(reason)); nothing else is done to \(vms.count == 1 ? "it" : "them") until it is: put the missing file back, or `vmlab library repair` rebuilds the catalog from the files"
  }
}
