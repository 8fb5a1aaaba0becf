import GRDB

/// The catalog inside one transaction, as the engine sees it: records to insert and update, and
/// named queries (in the `…Queries.swift` files beside this one), never SQL. Only `Catalog/` knows
/// that the catalog is SQLite through GRDB, so another backend would change this folder alone.
struct CatalogTransaction {
  let db: Database

  init(_ db: Database) { self.db = db }

  /// Inserts a row that gets its id from the catalog (the record learns it).
  func insert<Record: MutablePersistableRecord>(_ record: inout Record) throws { try record.insert(db) }

  /// Inserts a row keyed by its columns (a slot, a checkpoint's frozen disk).
  func insert<Record: PersistableRecord>(_ record: Record) throws { try record.insert(db) }

  /// Writes every column of an existing row.
  func update<Record: MutablePersistableRecord>(_ record: Record) throws { try record.update(db) }

  /// Checks foreign keys at the commit instead of at each statement, so that an operation can
  /// rewire and remove rows that refer to each other in any order.
  func deferForeignKeyChecks() throws { try db.execute(sql: "PRAGMA defer_foreign_keys = ON") }
}
