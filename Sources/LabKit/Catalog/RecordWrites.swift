import GRDB

// The record writes a multi-VM operation makes for every VM and disk (a restore inserts a disk and
// repoints a slot per disk, and updates each VM), on statements prepared once per connection.
// GRDB's generic `insert` and `update` look up the table's primary key and build their SQL anew
// for every record (about 100,000 instructions each, a tenth of a 20-VM lab restore); these write
// the same columns — every column the record encodes — with the same conflict handling.

extension CatalogTransaction {
  /// Inserts a disk row; the record learns its id.
  func insert(_ disk: inout DiskRecord) throws {
    let values = try disk.databaseDictionary
    let columns = values.keys.sorted()
    let sql =
      "INSERT INTO \(DiskRecord.databaseTableName) (\(columns.map(quoted).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
    try db.cachedStatement(sql: sql).execute(arguments: arguments(columns, from: values))
    disk.id = db.lastInsertedRowID
  }

  /// Writes every column of an existing slot.
  func update(_ slot: SlotRecord) throws { try updateRow(slot, key: ["vmID", "number"]) }

  /// Writes every column of an existing VM.
  func update(_ vm: VMRecord) throws { try updateRow(vm, key: ["id"]) }

  /// An UPDATE of every column but the key; a row that is not there is an error naming it (as
  /// GRDB's `update` refuses one), not a silent no-op.
  private func updateRow<Record: EncodableRecord & TableRecord>(_ record: Record, key: [String]) throws {
    let values = try record.databaseDictionary
    let columns = values.keys.filter { !key.contains($0) }.sorted()
    let sql =
      "UPDATE \(Record.databaseTableName) SET \(columns.map { "\(quoted($0)) = ?" }.joined(separator: ", ")) WHERE \(key.map { "\(quoted($0)) = ?" }.joined(separator: " AND "))"
    try db.cachedStatement(sql: sql).execute(arguments: arguments(columns + key, from: values))
    guard db.changesCount > 0 else {
      let described = key.map { "\($0) \(values[$0].map { "\($0)" } ?? "NULL")" }.joined(separator: ", ")
      throw LabKitError(
        .inconsistent,
        "the catalog has no \(Record.databaseTableName) row \(described) to update; `vmlab library check` names the damage and `vmlab library repair` rebuilds the catalog from the files"
      )
    }
  }

  private func quoted(_ column: String) -> String { "\"\(column)\"" }

  /// The values of these columns, typed as database values (an array of `Any` would make GRDB
  /// cast each one at run time, and a value it could not convert would drop every argument).
  private func arguments(_ columns: [String], from values: [String: DatabaseValue]) -> StatementArguments {
    StatementArguments(columns.map { values[$0] as (any DatabaseValueConvertible)? })
  }
}
