import Foundation
import GRDB

/// The library's SQLite catalog: VMs, disks, checkpoints, labs, jobs and the operation journal.
final class Catalog {
  let database: DatabaseQueue
  private let path: String
  // GRDB does not guard a closed connection (SQLite would be handed a freed handle), so this does.
  private let closedLock = NSLock()
  private var closed = false

  init(path: String) throws {
    self.path = path
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    // Write-ahead logging: one fsync per commit (synchronous stays FULL, so a commit survives power
    // loss), and readers never wait for a writer.
    configuration.journalMode = .wal
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA foreign_keys = ON")
    }
    do {
      database = try DatabaseQueue(path: path, configuration: configuration)
    } catch let error as DatabaseError {
      throw Catalog.damaged(path, error)
    }
    do {
      // A catalog a newer vmlab wrote has tables this one does not know: refuse it rather than
      // write rows that miss them.
      if try database.read({ db in try Catalog.migrator.hasBeenSuperseded(db) }) {
        throw LabKitError(
          .inconsistent,
          "the catalog \(path) was written by a newer vmlab; use that version, or `vmlab library repair` rebuilds the catalog from the files"
        )
      }
      try Catalog.migrator.migrate(database)
    } catch let error as DatabaseError {
      try? database.close()
      throw Catalog.damaged(path, error)
    } catch {
      try? database.close()
      throw error
    }
  }

  /// Runs `body` in a read transaction.
  ///
  /// GRDB makes a queue's read read-only with `PRAGMA query_only`, set and reset around each read,
  /// and SQLite expires every prepared statement when such a flag changes: each read then made the
  /// statements that `cachedStatement` keeps be compiled again (87 times in a 20-VM lab restore, with
  /// GRDB's authorizer called back for every table and column, 6% of its processor time). Debug
  /// builds, which the tests run, keep GRDB's read-only guard, so a write inside a read still fails
  /// there; release builds run the same deferred transaction without the pragma.
  func read<T>(_ body: (CatalogTransaction) throws -> T) throws -> T {
    try ensureOpen()
    #if DEBUG
      return try translatingDamage { try database.read { db in try body(CatalogTransaction(db)) } }
    #else
      return try translatingDamage {
        try database.writeWithoutTransaction { db in
          var result: T?
          try db.inTransaction(.deferred) {
            result = try body(CatalogTransaction(db))
            return .commit
          }
          return result!
        }
      }
    #endif
  }

  /// Runs `body` in a write transaction: all of its changes are committed together, or none.
  func write<T>(_ body: (CatalogTransaction) throws -> T) throws -> T {
    try ensureOpen()
    return try translatingDamage { try database.write { db in try body(CatalogTransaction(db)) } }
  }

  /// The problems SQLite's own integrity check finds (pages overwritten, broken indexes); empty
  /// when the file is sound.
  func integrityProblems() throws -> [String] {
    try ensureOpen()
    return try translatingDamage {
      try database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" } }
    }
  }

  /// A damaged file surfaces as a SQLite error in whatever query first reads the bad page: say what
  /// it means and what fixes it, whichever command met it.
  private func translatingDamage<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as DatabaseError
      where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    {
      throw Catalog.damaged(path, error)
    }
  }

  static func damaged(_ path: String, _ error: DatabaseError) -> LabKitError {
    LabKitError(
      .inconsistent,
      "the catalog \(path) is damaged (\(error.message ?? "\(error)")); `vmlab library repair` rebuilds it from the files"
    )
  }

  /// Closes the database; later reads and writes throw.
  func close() throws {
    try closedLock.withLock {
      guard !closed else { return }
      closed = true
      try database.close()
    }
  }

  private func ensureOpen() throws {
    if closedLock.withLock({ closed }) {
      throw LabKitError(.failed, "the library catalog \(path) was closed; open the library again to use it")
    }
  }

  /// Versioned migrations: each release adds steps, never edits old ones.
  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in
      try db.create(table: "setting") { t in
        t.primaryKey("key", .text)
        t.column("value", .text).notNull()
      }
      try db.create(table: "vm") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("name", .text).notNull().unique(onConflict: .abort).collate(.nocase)
        t.column("hostKind", .text).notNull()
        t.column("state", .text).notNull()
        t.column("additions", .boolean).notNull()
        t.column("created", .datetime).notNull()
        t.column("currentCheckpointID", .integer)
        t.column("savedStatePath", .text)
      }
      try db.create(table: "disk") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("path", .text).notNull().unique()
        t.column("uniqueID", .text).notNull()
        t.column("parentID", .integer).references("disk", onDelete: .restrict)
        t.column("vmID", .integer).references("vm", onDelete: .cascade)
        t.column("slot", .integer)
        t.column("role", .text).notNull()
        t.column("checkpointID", .integer)
      }
      try db.create(table: "slot") { t in
        t.column("vmID", .integer).notNull().references("vm", onDelete: .cascade)
        t.column("number", .integer).notNull()
        t.column("baseID", .integer).notNull().references("disk")
        t.column("leafID", .integer).notNull().references("disk")
        t.primaryKey(["vmID", "number"])
      }
      try db.create(table: "checkpoint") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("vmID", .integer).notNull().references("vm", onDelete: .cascade)
        t.column("name", .text).notNull()
        t.column("description", .text).notNull()
        t.column("created", .datetime).notNull()
        t.column("stamp", .text).notNull()
        t.column("parentID", .integer)
        t.column("runningStatePath", .text)
      }
      try db.create(table: "checkpointDisk") { t in
        t.column("checkpointID", .integer).notNull().references("checkpoint", onDelete: .cascade)
        t.column("slot", .integer).notNull()
        t.column("stateID", .integer).notNull().references("disk")
        t.primaryKey(["checkpointID", "slot"])
      }
      try db.create(table: "lab") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("name", .text).notNull().unique().collate(.nocase)
        t.column("created", .datetime).notNull()
      }
      try db.create(table: "labMember") { t in
        t.column("labID", .integer).notNull().references("lab", onDelete: .cascade)
        t.column("vmID", .integer).notNull().references("vm", onDelete: .cascade)
        t.column("position", .integer).notNull()
        t.primaryKey(["labID", "vmID"])
      }
      try db.create(table: "job") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("kind", .text).notNull()
        t.column("target", .text).notNull()
        t.column("status", .text).notNull()
        t.column("progress", .double).notNull()
        t.column("created", .datetime).notNull()
        t.column("started", .datetime)
        t.column("finished", .datetime)
        t.column("error", .text)
        t.column("result", .text)
      }
      try db.create(table: "journal") { t in
        t.autoIncrementedPrimaryKey("id")
        t.column("operation", .text).notNull()
        t.column("vmName", .text).notNull()
        t.column("created", .datetime).notNull()
        t.column("creates", .jsonText).notNull()
        t.column("deletes", .jsonText).notNull()
        t.column("committed", .boolean).notNull()
        t.column("redo", .text)
      }
    }
    // A template remembers the disk it was made from, so that every linked clone of one source
    // shares one template.
    migrator.registerMigration("v2") { db in
      try db.alter(table: "disk") { t in t.add(column: "sourceUniqueID", .text) }
    }
    // Each VM names the host that runs it and carries its hardware; a VM the host found stopped
    // when the library opened remembers when.
    migrator.registerMigration("host-and-hardware") { db in
      try db.alter(table: "vm") { t in
        t.add(column: "host", .text).notNull().defaults(to: HostRegistry.defaultName)
        t.add(column: "memory", .integer).notNull().defaults(to: Int64(Hardware.defaultMemory))
        t.add(column: "cpus", .integer).notNull().defaults(to: 1)
        t.add(column: "bootKernel", .text)
        t.add(column: "bootInitrd", .text)
        t.add(column: "bootCommandLine", .text)
        t.add(column: "network", .text).notNull().defaults(to: Hardware.Network.none.rawValue)
        t.add(column: "accelerator", .text).notNull().defaults(to: Hardware.Accelerator.auto.rawValue)
        t.add(column: "stoppedOutside", .datetime)
      }
    }
    // Names are looked up by a stored key (the name as `NameRules` compares it) instead of a
    // SQLite-only collation; which VMs a journal entry involves is a table, not a comma-joined name
    // list searched with `instr`; and the lookups that walk the disk tree have indexes.
    migrator.registerMigration("catalog-keys") { db in
      for table in ["vm", "lab"] {
        try db.alter(table: table) { t in t.add(column: "nameKey", .text).notNull().defaults(to: "") }
        let rows = try Row.fetchAll(db, sql: "SELECT id, name FROM \(table)")
        for row in rows {
          try db.execute(
            sql: "UPDATE \(table) SET nameKey = ? WHERE id = ?",
            arguments: [NameRules.key(row["name"] as String), row["id"] as Int64])
        }
        try db.create(index: "\(table)_nameKey", on: table, columns: ["nameKey"], options: .unique)
      }
      try db.create(table: JournalVMRecord.databaseTableName) { t in
        t.column("journalID", .integer).notNull().references("journal", onDelete: .cascade)
        t.column("vmKey", .text).notNull()
        t.primaryKey(["journalID", "vmKey"])
      }
      try db.create(index: "journalVM_vmKey", on: "journalVM", columns: ["vmKey"])
      for row in try Row.fetchAll(db, sql: "SELECT id, vmName FROM journal") {
        for name in JournalRecord.names(inList: row["vmName"]) {
          try db.execute(
            sql: "INSERT OR IGNORE INTO journalVM(journalID, vmKey) VALUES (?, ?)",
            arguments: [row["id"] as Int64, NameRules.key(name)])
        }
      }
      try db.create(index: "disk_parentID", on: "disk", columns: ["parentID"])
      try db.create(index: "disk_vmID", on: "disk", columns: ["vmID"])
      try db.create(index: "checkpointDisk_stateID", on: "checkpointDisk", columns: ["stateID"])
      try db.create(index: "checkpoint_vmID", on: "checkpoint", columns: ["vmID"])
    }
    // Words that mean one thing: a VM's or checkpoint's saved memory is not "state" (that is its
    // power), a checkpoint keeps frozen disks, and a disk's role says what it is (a layer of the
    // VM's chain), not which operation made it.
    migrator.registerMigration("plain-words") { db in
      try db.execute(sql: "ALTER TABLE vm RENAME COLUMN savedStatePath TO savedMemoryPath")
      try db.execute(sql: "ALTER TABLE checkpoint RENAME COLUMN runningStatePath TO memoryPath")
      try db.execute(sql: "DROP INDEX checkpointDisk_stateID")
      try db.execute(sql: "ALTER TABLE checkpointDisk RENAME COLUMN stateID TO frozenDiskID")
      try db.create(index: "checkpointDisk_frozenDiskID", on: "checkpointDisk", columns: ["frozenDiskID"])
      try db.execute(
        sql: "UPDATE disk SET role = ? WHERE role IN (?, ?)",
        arguments: [DiskRole.layer, DiskRole.madeByCheckpoint, DiskRole.madeByRestore])
    }
    // An operation prepared in two phases keeps its commit in the journal while it waits for the
    // decision (a lab checkpoint across the hosts of a cluster).
    migrator.registerMigration("prepared-operations") { db in
      try db.alter(table: "journal") { t in t.add(column: "prepared", .text) }
    }
    return migrator
  }
}
