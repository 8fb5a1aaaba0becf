import GRDB

/// The library's settings: a small key-value table (the default host kind, for one).
extension CatalogTransaction {
  func settings() throws -> [String: String] {
    let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM setting")
    return Dictionary(rows.map { ($0["key"] as String, $0["value"] as String) }, uniquingKeysWith: { _, last in last })
  }

  func setting(_ key: String) throws -> String? {
    try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key])
  }

  func setSetting(_ key: String, to value: String) throws {
    try db.execute(
      sql: "INSERT INTO setting(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      arguments: [key, value])
  }
}
