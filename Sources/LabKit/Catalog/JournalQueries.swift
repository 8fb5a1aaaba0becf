import GRDB

// The journal of multi-file operations (DESIGN.md rule 1) and which VMs each one involves.

extension CatalogTransaction {
  /// Records an operation about to start, and which VMs it involves.
  func beginJournalEntry(_ entry: inout JournalRecord) throws {
    try entry.insert(db)
    guard let id = entry.id else { return }
    for key in Set(entry.vmNames.map(NameRules.key)) {
      try JournalVMRecord(journalID: id, vmKey: key).insert(db)
    }
  }

  func markJournalEntryCommitted(id: Int64) throws {
    try db.cachedStatement(sql: "UPDATE journal SET committed = 1 WHERE id = ?").execute(arguments: [id])
  }

  /// Records the commit of a prepared operation: from now on only a decision settles the entry.
  func markJournalEntryPrepared(id: Int64, commit: String) throws {
    try db.execute(sql: "UPDATE journal SET prepared = ? WHERE id = ?", arguments: [commit, id])
  }

  func journalEntry(id: Int64) throws -> JournalRecord? { try JournalRecord.fetchOne(db, key: id) }

  /// The VMs that prepared operations hold until their decision.
  func vmKeysOfPreparedOperations() throws -> Set<String> {
    Set(
      try String.fetchAll(
        db,
        sql:
          "SELECT journalVM.vmKey FROM journal JOIN journalVM ON journalVM.journalID = journal.id WHERE journal.prepared IS NOT NULL AND journal.committed = 0"
      ))
  }

  /// Removes a settled entry (its VM list goes with it).
  func deleteJournalEntry(id: Int64) throws {
    try db.cachedStatement(sql: "DELETE FROM journal WHERE id = ?").execute(arguments: [id])
  }

  /// Every entry, oldest first.
  func journalEntries() throws -> [JournalRecord] {
    try JournalRecord.order(JournalRecord.Columns.id).fetchAll(db)
  }

  /// The entries that involve this VM, oldest first, but `excluded`. Runs before every operation
  /// on a VM, so the statement is prepared once; the entry a decision settles is left out here
  /// rather than decoded for each of its VMs (a lab's share of a class) and skipped.
  func journalEntries(involvingVM name: String, excluding excluded: Int64? = nil) throws -> [JournalRecord] {
    try JournalRecord.fetchAll(
      db.cachedStatement(
        sql: """
          SELECT journal.* FROM journal JOIN journalVM ON journalVM.journalID = journal.id
          WHERE journalVM.vmKey = ? AND journal.id IS NOT ? ORDER BY journal.id
          """
      ), arguments: [NameRules.key(name), excluded])
  }

  func journalEntryCount() throws -> Int { try JournalRecord.fetchCount(db) }
}
