/// A Lua value as Swift holds it. Tables, functions, userdata and threads stay in the Lua state and
/// are held through references; everything else is copied.
///
/// Equality and hashing follow Lua's raw equality: `1 == 1.0`, strings compare by bytes, and
/// references compare by identity.
public enum LuaValue {
  case `nil`
  case boolean(Bool)
  case integer(Int64)
  case number(Double)
  /// Lua strings are byte strings; `stringValue` decodes them as UTF-8.
  case string([UInt8])
  case table(LuaTable)
  case function(LuaFunction)
  case userdata(LuaUserdata)
  case thread(LuaReference)

  /// A string value from Swift text (UTF-8).
  public static func text(_ text: String) -> LuaValue { .string(Array(text.utf8)) }

  public init(_ value: Bool) { self = .boolean(value) }
  public init(_ value: Int) { self = .integer(Int64(value)) }
  public init(_ value: Int64) { self = .integer(value) }
  public init(_ value: Double) { self = .number(value) }
  public init(_ value: String) { self = .text(value) }
  public init(bytes: [UInt8]) { self = .string(bytes) }
  public init<Value: LuaValueConvertible>(_ value: Value?) { self = value?.luaValue ?? .nil }

  /// Lua's type name: "nil", "boolean", "number", "string", "table", "function", "userdata", "thread".
  public var typeName: String {
    switch self {
    case .nil: "nil"
    case .boolean: "boolean"
    case .integer, .number: "number"
    case .string: "string"
    case .table: "table"
    case .function: "function"
    case .userdata: "userdata"
    case .thread: "thread"
    }
  }

  public var isNil: Bool { if case .nil = self { true } else { false } }

  /// Lua truth: everything but nil and false.
  public var isTruthy: Bool {
    switch self {
    case .nil: false
    case .boolean(let value): value
    default: true
    }
  }

  public var boolValue: Bool? { if case .boolean(let value) = self { value } else { nil } }

  /// The integer, or a float with an exact integer value (as Lua's math.tointeger).
  public var intValue: Int? {
    switch self {
    case .integer(let value): Int(exactly: value)
    case .number(let value): Int(exactly: value)
    default: nil
    }
  }

  public var doubleValue: Double? {
    switch self {
    case .integer(let value): Double(value)
    case .number(let value): value
    default: nil
    }
  }

  /// The string decoded as UTF-8 (invalid sequences become U+FFFD); nil if not a string.
  public var stringValue: String? {
    if case .string(let bytes) = self { String(decoding: bytes, as: UTF8.self) } else { nil }
  }

  public var bytesValue: [UInt8]? { if case .string(let bytes) = self { bytes } else { nil } }
  public var tableValue: LuaTable? { if case .table(let table) = self { table } else { nil } }
  public var functionValue: LuaFunction? { if case .function(let function) = self { function } else { nil } }
  public var userdataValue: LuaUserdata? { if case .userdata(let userdata) = self { userdata } else { nil } }
}

extension LuaValue: Hashable {
  public static func == (lhs: LuaValue, rhs: LuaValue) -> Bool {
    switch (lhs, rhs) {
    case (.nil, .nil): true
    case (.boolean(let a), .boolean(let b)): a == b
    case (.integer(let a), .integer(let b)): a == b
    case (.number(let a), .number(let b)): a == b
    // Lua compares integers and floats by mathematical value.
    case (.integer(let a), .number(let b)), (.number(let b), .integer(let a)): Int64(exactly: b) == a
    case (.string(let a), .string(let b)): a == b
    case (.table(let a as LuaReference), .table(let b as LuaReference)),
      (.function(let a as LuaReference), .function(let b as LuaReference)),
      (.userdata(let a as LuaReference), .userdata(let b as LuaReference)),
      (.thread(let a), .thread(let b)):
      a.identity == b.identity
    default: false
    }
  }

  public func hash(into hasher: inout Hasher) {
    switch self {
    case .nil: hasher.combine(0)
    case .boolean(let value): hasher.combine(value)
    case .integer(let value): hasher.combine(value)
    case .number(let value):
      // Floats equal to an integer must hash as that integer.
      if let integer = Int64(exactly: value) { hasher.combine(integer) } else { hasher.combine(value) }
    case .string(let bytes): hasher.combine(bytes)
    case .table(let reference as LuaReference), .function(let reference as LuaReference),
      .userdata(let reference as LuaReference), .thread(let reference):
      hasher.combine(reference.identity)
    }
  }
}

extension LuaValue: CustomStringConvertible {
  public var description: String {
    switch self {
    case .nil: "nil"
    case .boolean(let value): String(value)
    case .integer(let value): String(value)
    case .number(let value): String(value)
    case .string(let bytes): String(decoding: bytes, as: UTF8.self)
    case .table(let reference as LuaReference), .function(let reference as LuaReference),
      .userdata(let reference as LuaReference), .thread(let reference):
      "\(typeName): \(reference.identity.map { String(describing: $0) } ?? "nil")"
    }
  }
}

extension LuaValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByStringLiteral
{
  public init(nilLiteral: ()) { self = .nil }
  public init(booleanLiteral value: Bool) { self = .boolean(value) }
  public init(integerLiteral value: Int64) { self = .integer(value) }
  public init(floatLiteral value: Double) { self = .number(value) }
  public init(stringLiteral value: String) { self = .text(value) }
}
