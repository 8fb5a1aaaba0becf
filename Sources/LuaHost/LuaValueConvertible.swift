/// Swift types that convert to and from a LuaValue; used for typed reads of arguments and fields.
public protocol LuaValueConvertible {
  /// What an error message says was expected ("number", "string", ...).
  static var luaTypeName: String { get }
  /// nil when the value has another type (no coercion between strings and numbers).
  static func from(_ value: LuaValue) -> Self?
  var luaValue: LuaValue { get }
}

extension LuaValue: LuaValueConvertible {
  public static var luaTypeName: String { "value" }
  public static func from(_ value: LuaValue) -> LuaValue? { value }
  public var luaValue: LuaValue { self }
}

extension Bool: LuaValueConvertible {
  public static var luaTypeName: String { "boolean" }
  public static func from(_ value: LuaValue) -> Bool? { value.boolValue }
  public var luaValue: LuaValue { .boolean(self) }
}

extension Int: LuaValueConvertible {
  public static var luaTypeName: String { "number" }
  public static func from(_ value: LuaValue) -> Int? { value.intValue }
  public var luaValue: LuaValue { .integer(Int64(self)) }
}

extension Int64: LuaValueConvertible {
  public static var luaTypeName: String { "number" }
  public static func from(_ value: LuaValue) -> Int64? { value.intValue.map(Int64.init) }
  public var luaValue: LuaValue { .integer(self) }
}

extension Double: LuaValueConvertible {
  public static var luaTypeName: String { "number" }
  public static func from(_ value: LuaValue) -> Double? { value.doubleValue }
  public var luaValue: LuaValue { .number(self) }
}

extension String: LuaValueConvertible {
  public static var luaTypeName: String { "string" }
  public static func from(_ value: LuaValue) -> String? { value.stringValue }
  public var luaValue: LuaValue { .text(self) }
}

extension Array: LuaValueConvertible where Element == UInt8 {
  public static var luaTypeName: String { "string" }
  public static func from(_ value: LuaValue) -> [UInt8]? { value.bytesValue }
  public var luaValue: LuaValue { .string(self) }
}

extension LuaTable: LuaValueConvertible {
  public static var luaTypeName: String { "table" }
  public static func from(_ value: LuaValue) -> LuaTable? { value.tableValue }
  public var luaValue: LuaValue { .table(self) }
}

extension LuaFunction: LuaValueConvertible {
  public static var luaTypeName: String { "function" }
  public static func from(_ value: LuaValue) -> LuaFunction? { value.functionValue }
  public var luaValue: LuaValue { .function(self) }
}
