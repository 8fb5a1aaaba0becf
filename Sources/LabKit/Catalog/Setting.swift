import GRDB

/// The library's settings: a small key-value table (the default host kind, for one).
enum Setting {
  static func all(_ db: Database) throws -> [String: String] {
    let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM setting")
    return Dictionary(rows.map { ($0["key"] as String, $0["value"] as String) }, uniquingKeysWith: { _, last in last })
  }

  static func value(_ db: Database, _ key: String) throws -> String? {
    try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key])
  }

  static func set(_ db: Database, _ key: String, to value: String) throws {
    try db.execute(
      sql: "INSERT INTO setting(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      arguments: [key, value])
  }
}
