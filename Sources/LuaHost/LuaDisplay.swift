import Foundation

/// How the REPL shows a value to a person exploring, the way PowerShell shows objects: a list as a
/// table with one row per item (the columns its class declares with `LuaClass.columns`, or the
/// fields of plain records), a record such as a plan as its fields, one per line, with nested
/// tables indented to a few levels. Everything else shows as `tostring` gives it.
public struct LuaDisplay {
  public let state: LuaState
  /// Levels of nested tables shown before they become a summary such as `{3 fields}`.
  public var depth: Int
  /// Longest cell of a table; longer ones end in "…".
  public var cellWidth = 48

  public init(state: LuaState, depth: Int = 3) {
    self.state = state
    self.depth = depth
  }

  /// The text for `value`, or nil when `print` shows it well already (anything but a table).
  public func text(for value: LuaValue) -> String? {
    guard case .table(let table) = value else { return nil }
    return lines(for: table, depth: depth, seen: []).joined(separator: "\n")
  }

  /// A list in one line, for `tostring` and `print`: "VMs (2): db01, web01", each item as its
  /// cell in a table would show it, the first ten.
  public func line(forList list: LuaTable, named name: String) -> String {
    let items = list.array()
    guard !items.isEmpty else { return "\(name) (0)" }
    var text = "\(name) (\(items.count)): " + items.prefix(10).map { cell($0, width: nil) }.joined(separator: ", ")
    if items.count > 10 { text += ", …" }
    return text
  }

  // MARK: Tables

  private func lines(for table: LuaTable, depth: Int, seen: Set<UnsafeRawPointer>) -> [String] {
    let items = table.array()
    var fields: [(key: String, value: LuaValue)] = []
    table.forEach { key, value in
      if case .integer(let index) = key, index >= 1, index <= items.count { return }
      fields.append((key.stringValue ?? "[\(state.describe(key))]", value))
    }
    let seen = seen.union([table.identity].compactMap { $0 })
    if fields.isEmpty {
      if items.isEmpty {
        guard let name = listName(of: table) else { return ["{}"] }
        return [name == "List" ? "(an empty list)" : "(no \(name))"]
      }
      return listLines(items, depth: depth, seen: seen)
    }
    // A table with both parts: its sequence items are fields [1], [2], … before the named ones.
    let numbered = items.enumerated().map { (key: "[\($0.offset + 1)]", value: $0.element) }
    return recordLines(numbered + ordered(fields), depth: depth, seen: seen)
  }

  /// One row per item when the items are objects with columns or records; otherwise one per line.
  private func listLines(_ items: [LuaValue], depth: Int, seen: Set<UnsafeRawPointer>) -> [String] {
    let userdata = items.compactMap(\.userdataValue)
    if userdata.count == items.count, let first = userdata.first?.metatableIdentity,
      userdata.allSatisfy({ $0.metatableIdentity == first }), let columns = state.displayColumns[first]
    {
      let rows = userdata.map { object in
        // An object that is gone fails every property the same way: say it once.
        var failed = false
        return columns.map { column -> String in
          switch Result(catching: { try object.get(.text(column)) }) {
          case .success(let value): return cell(value)
          case .failure(let error):
            defer { failed = true }
            return failed ? "" : "(\((error as? LuaError)?.message ?? "\(error)"))"
          }
        }
      }
      return tableLines(header: columns, rows: rows)
    }
    let records = items.compactMap(\.tableValue)
    if records.count == items.count && records.allSatisfy({ $0.count == 0 }) {
      var keys: [String] = []
      for record in records {
        record.forEach { key, _ in
          if let name = key.stringValue, !keys.contains(name) { keys.append(name) }
        }
      }
      if !keys.isEmpty {
        let columns = ordered(keys.map { (key: $0, value: LuaValue.nil) }).map(\.key)
        return tableLines(header: columns, rows: records.map { record in columns.map { cell(record[$0]) } })
      }
    }
    return items.flatMap { item -> [String] in
      if case .table(let nested) = item, depth > 0, let identity = nested.identity, !seen.contains(identity) {
        return lines(for: nested, depth: depth - 1, seen: seen)
      }
      return [full(item)]
    }
  }

  /// `key : value` lines, keys aligned; nested tables indented below their key.
  private func recordLines(_ fields: [(key: String, value: LuaValue)], depth: Int, seen: Set<UnsafeRawPointer>)
    -> [String]
  {
    let width = fields.map(\.key.count).max() ?? 0
    var result: [String] = []
    for (key, value) in fields {
      let label = key.padding(toLength: width, withPad: " ", startingAt: 0) + " : "
      guard case .table(let nested) = value else {
        result.append(label + full(value))
        continue
      }
      let items = nested.array()
      var named = 0
      nested.forEach { key, _ in
        if case .integer(let index) = key, index >= 1, index <= items.count { return }
        named += 1
      }
      if items.isEmpty && named == 0 {
        result.append(label + "(none)")
      } else if named == 0 && items.allSatisfy(isScalar) {
        // A list of names or paths: one per line, under the first.
        let indent = String(repeating: " ", count: label.count)
        result.append(label + full(items[0]))
        result += items.dropFirst().map { indent + full($0) }
      } else if depth <= 0 || nested.identity.map(seen.contains) == true {
        result.append(label + summary(nested))
      } else {
        result.append(label.trimmingSuffix())
        result += lines(for: nested, depth: depth - 1, seen: seen).map { "  " + $0 }
      }
    }
    return result
  }

  /// Columns padded to their widest cell, a rule of dashes under the header.
  private func tableLines(header: [String], rows: [[String]]) -> [String] {
    var widths = header.map(\.count)
    for row in rows {
      for (column, text) in row.enumerated() { widths[column] = max(widths[column], text.count) }
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { column, text in
        column == cells.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
      }.joined(separator: "  ").trimmingSuffix()
    }
    return [line(header), line(header.map { String(repeating: "-", count: $0.count) })] + rows.map(line)
  }

  // MARK: Values

  private func property(_ name: String, of object: LuaUserdata) -> LuaValue {
    do {
      return try object.get(.text(name))
    } catch {
      return .text("(\((error as? LuaError)?.message ?? "\(error)"))")
    }
  }

  /// A value on its own line: whole.
  private func full(_ value: LuaValue) -> String {
    if case .table(let table) = value { return summary(table) }
    return state.describe(value)
  }

  /// A value in a table's cell: one short line. An object shows as its first column (its name);
  /// a list of names as {a, b}, a list of objects as its length.
  private func cell(_ value: LuaValue) -> String { cell(value, width: cellWidth) }

  /// A cell cut to `width` characters (nil: whole).
  private func cell(_ value: LuaValue, width: Int?) -> String {
    var text: String
    switch value {
    case .nil:
      text = ""
    case .userdata(let object):
      if let identity = object.metatableIdentity, let first = state.displayColumns[identity]?.first {
        text = state.describe(property(first, of: object))
      } else {
        text = state.describe(value)
      }
    case .table(let table):
      let items = table.array()
      if items.allSatisfy(isScalar) && table.dictionaryCount == items.count {
        text = "{" + items.map(state.describe).joined(separator: ", ") + "}"
      } else if table.dictionaryCount == items.count {
        text = "\(items.count)"
      } else {
        text = summary(table)
      }
    default:
      text = state.describe(value)
    }
    text = text.replacingOccurrences(of: "\n", with: " ")
    guard let width, text.count > width else { return text }
    // A path says the most at its end (the file name); other text at its start.
    return text.hasPrefix("/") ? "…" + String(text.suffix(width - 1)) : String(text.prefix(width - 1)) + "…"
  }

  private func summary(_ table: LuaTable) -> String {
    let items = table.count
    let all = table.dictionaryCount
    if all == 0 { return "{}" }
    if all == items { return "{\(items) item\(items == 1 ? "" : "s")}" }
    return "{\(all) field\(all == 1 ? "" : "s")}"
  }

  private func isScalar(_ value: LuaValue) -> Bool {
    switch value {
    case .nil, .boolean, .integer, .number, .string: true
    default: false
    }
  }

  private func listName(of table: LuaTable) -> String? {
    table.metatable?["__name"].stringValue
  }

  /// Fields most people look for first (name, vm, id, …), then the rest by name.
  private func ordered(_ fields: [(key: String, value: LuaValue)]) -> [(key: String, value: LuaValue)] {
    let leading = [
      "name", "vm", "id", "kind", "target", "status", "state", "operation", "checkpoint", "action", "applied", "path",
      "type", "size",
    ]
    return fields.sorted { left, right in
      let l = leading.firstIndex(of: left.key) ?? leading.count
      let r = leading.firstIndex(of: right.key) ?? leading.count
      return l != r ? l < r : left.key < right.key
    }
  }
}

extension LuaTable {
  /// How many keys the table has, whatever their kind (raw traversal).
  var dictionaryCount: Int {
    var count = 0
    forEach { _, _ in count += 1 }
    return count
  }
}

extension String {
  fileprivate func trimmingSuffix() -> String {
    var text = self
    while text.last == " " { text.removeLast() }
    return text
  }
}
