import GRDB

extension FetchableRecord where Self: TableRecord {
  /// The row another row of the catalog refers to. Its absence means the catalog is damaged, which
  /// is an error naming the row and the way out, never a crash.
  static func fetchExisting(_ db: Database, key: some DatabaseValueConvertible) throws -> Self {
    guard let row = try fetchOne(db, key: key) else { throw missingRow("\(key)") }
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
