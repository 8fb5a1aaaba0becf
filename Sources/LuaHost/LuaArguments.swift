import CLua
import CLuaShim

/// The arguments of one call from Lua to a Swift function, numbered from 1 as Lua numbers them.
///
/// Valid only during that call: it reads the Lua stack directly, so do not keep it. Checked reads
/// throw LuaArgumentError worded as Lua's own ("bad argument #2 to 'read' (number expected, got
/// string)"); the checks are Swift code, never luaL_check* (which would longjmp across Swift).
public struct LuaArguments {
  public let state: LuaState
  let L: OpaquePointer
  /// Stack index just below argument 1.
  let base: Int32
  /// The number of arguments passed (for a method, not counting the receiver).
  public let count: Int
  /// The name error messages use.
  public let functionName: String

  init(state: LuaState, L: OpaquePointer, base: Int32, count: Int, functionName: String) {
    self.state = state
    self.L = L
    self.base = base
    self.count = count
    self.functionName = functionName
  }

  /// The stack index of argument `position`, or nil when it was not passed.
  @inline(__always)
  func stackIndex(_ position: Int) -> Int32? {
    position >= 1 && position <= count ? base + Int32(position) : nil
  }

  /// Argument `position` as a LuaValue (.nil when absent).
  public subscript(position: Int) -> LuaValue {
    guard let index = stackIndex(position) else { return .nil }
    return state.value(at: index, on: L)
  }

  /// Every argument, in order.
  public var all: [LuaValue] { (0..<count).map { self[$0 + 1] } }

  /// True when the argument is nil or was not passed.
  public func isNil(_ position: Int) -> Bool {
    guard let index = stackIndex(position) else { return true }
    return lua_type(L, index) == LUA_TNIL
  }

  /// The argument's type as error messages name it (a class's name for its objects, "no value").
  public func typeName(_ position: Int) -> String {
    guard let index = stackIndex(position) else { return "no value" }
    return state.typeNameForMessages(at: index, on: L)
  }

  /// An argument error about argument `position`, to throw.
  public func error(_ position: Int, _ problem: String) -> LuaArgumentError {
    LuaArgumentError(position: position, function: functionName, problem: problem)
  }

  func typeError(_ position: Int, expected: String) -> LuaArgumentError {
    error(position, "\(expected) expected, got \(typeName(position))")
  }

  // MARK: Checked reads

  /// An integer; floats with an integral value and numeric strings are accepted, as in Lua.
  public func int(_ position: Int) throws -> Int {
    guard let index = stackIndex(position) else { throw typeError(position, expected: "number") }
    var isInteger: Int32 = 0
    let value = lua_tointegerx(L, index, &isInteger)
    if isInteger != 0 { return Int(value) }
    if lua_isnumber(L, index) != 0 { throw error(position, "number has no integer representation") }
    throw typeError(position, expected: "number")
  }

  /// An integer, or `defaultValue` when the argument is nil or absent.
  public func int(_ position: Int, default defaultValue: Int) throws -> Int {
    isNil(position) ? defaultValue : try int(position)
  }

  /// A number; numeric strings are accepted, as in Lua.
  public func double(_ position: Int) throws -> Double {
    guard let index = stackIndex(position) else { throw typeError(position, expected: "number") }
    var isNumber: Int32 = 0
    let value = lua_tonumberx(L, index, &isNumber)
    if isNumber != 0 { return value }
    throw typeError(position, expected: "number")
  }

  public func double(_ position: Int, default defaultValue: Double) throws -> Double {
    isNil(position) ? defaultValue : try double(position)
  }

  /// A string decoded as UTF-8; numbers are accepted and converted, as in Lua.
  public func string(_ position: Int) throws -> String {
    guard let index = stackIndex(position), isStringOrNumber(index) else {
      throw typeError(position, expected: "string")
    }
    var length = 0
    let chars = vmlab_tostring(L, index, &length)
    return String(decoding: UnsafeRawBufferPointer(start: chars, count: length), as: UTF8.self)
  }

  public func string(_ position: Int, default defaultValue: String) throws -> String {
    isNil(position) ? defaultValue : try string(position)
  }

  /// A string's bytes (Lua strings are binary); numbers are accepted and converted.
  public func bytes(_ position: Int) throws -> [UInt8] {
    guard let index = stackIndex(position), isStringOrNumber(index) else {
      throw typeError(position, expected: "string")
    }
    var length = 0
    let chars = vmlab_tostring(L, index, &length)
    return Array(UnsafeRawBufferPointer(start: chars, count: length))
  }

  /// Lua truth of the argument (absent and nil are false).
  public func bool(_ position: Int) -> Bool {
    guard let index = stackIndex(position) else { return false }
    return lua_toboolean(L, index) != 0
  }

  public func table(_ position: Int) throws -> LuaTable {
    guard let index = stackIndex(position), lua_type(L, index) == LUA_TTABLE else {
      throw typeError(position, expected: "table")
    }
    return LuaTable(state: state, L: L, index: index)
  }

  public func function(_ position: Int) throws -> LuaFunction {
    guard let index = stackIndex(position), lua_type(L, index) == LUA_TFUNCTION else {
      throw typeError(position, expected: "function")
    }
    return LuaFunction(state: state, L: L, index: index)
  }

  /// The payload of an object of `luaClass` ("VM expected, got Checkpoint" otherwise).
  public func object<Payload>(_ position: Int, of luaClass: LuaClass<Payload>) throws -> Payload {
    guard let index = stackIndex(position), let payload = luaClass.payload(at: index, on: L) else {
      throw typeError(position, expected: luaClass.name)
    }
    return payload
  }

  /// Argument `position` converted to `type` (no coercion between strings and numbers).
  public func value<Value: LuaValueConvertible>(_ position: Int, as type: Value.Type) throws -> Value {
    guard let value = Value.from(self[position]) else { throw typeError(position, expected: Value.luaTypeName) }
    return value
  }

  // MARK: Fields of table arguments

  /// Field `name` of the table passed as argument `position` (raw read: no metamethods).
  public func field(_ position: Int, _ name: String) throws -> LuaValue {
    guard let index = stackIndex(position), lua_type(L, index) == LUA_TTABLE else {
      throw typeError(position, expected: "table")
    }
    state.push(.text(name), on: L)
    lua_rawget(L, index)
    defer { vmlab_pop(L, 1) }
    return state.value(at: -1, on: L)
  }

  /// Field `name` of table argument `position` as `type`: "bad argument #1 to 'create' (field
  /// 'name': string expected, got nil)" otherwise.
  public func field<Value: LuaValueConvertible>(_ position: Int, _ name: String, as type: Value.Type) throws -> Value {
    let value = try field(position, name)
    guard let converted = Value.from(value) else {
      throw error(position, "field '\(name)': \(Value.luaTypeName) expected, got \(value.typeName)")
    }
    return converted
  }

  /// Field `name` as `type`, or `defaultValue` when the field is nil.
  public func field<Value: LuaValueConvertible>(
    _ position: Int, _ name: String, as type: Value.Type, default defaultValue: Value
  ) throws -> Value {
    let value = try field(position, name)
    if value.isNil { return defaultValue }
    guard let converted = Value.from(value) else {
      throw error(position, "field '\(name)': \(Value.luaTypeName) expected, got \(value.typeName)")
    }
    return converted
  }

  private func isStringOrNumber(_ index: Int32) -> Bool {
    let type = lua_type(L, index)
    return type == LUA_TSTRING || type == LUA_TNUMBER
  }
}
