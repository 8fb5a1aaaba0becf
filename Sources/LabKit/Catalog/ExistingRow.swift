import GRDB

extension FetchableRecord where Self: TableRecord {
  /// The row with this id. The statement is prepared once per connection: preparing one costs more
  /// than running these small lookups, and a lab operation makes hundreds of them.
  static func fetchOne(_ db: Database, id: Int64) throws -> Self? {
    try fetchOne(db.cachedStatement(sql: "SELECT * FROM \(databaseTableName) WHERE id = ?"), arguments: [id])
  }

  /// The row another row of the catalog refers to. Its absence means the catalog is damaged, which
  /// is an error naming the row and the way out, never a crash.
  static func fetchExisting(_ db: Database, key: Int64) throws -> Self {
    guard let row = try fetchOne(db, id: key) else { throw missingRow("\(key)") }
    return row
  }

  /// The same for a table with a composite key.
  static func fetchExisting(_ db: Database, key: [String: (any DatabaseValueConvertible)?]) throws -> Self {
    guard let row = try fetchOne(db, key: key) else {
      let described = key.keys.sorted().map { "\($0) \(key[$0].flatMap { $0 }.map { "\($0)" } ?? "NULL")" }
      throw missingRow(described.joined(separator: ", "))
    }
    return row
  }

  private static func missingRow(_ key: String) -> LabKitError {
    LabKitError(
      .inconsistent,
      "the catalog has no \(databaseTableName) row \(key), which another row refers to; `vmlab library check` names the damage and `vmlab library repair` rebuilds the catalog from the files"
    )
  }
}
