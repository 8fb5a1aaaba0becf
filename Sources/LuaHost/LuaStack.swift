import CLua
import CLuaShim

// Moving values between Swift and a Lua stack. None of these raise (DESIGN.md rule 5): they use
// raw access only, and allocation is never refused while Swift is the innermost frame.

extension LuaState {
  /// Pushes `value` on `L`'s stack. The caller guarantees one free slot (lua_checkstack).
  func push(_ value: LuaValue, on L: OpaquePointer) {
    switch value {
    case .nil:
      lua_pushnil(L)
    case .boolean(let flag):
      lua_pushboolean(L, flag ? 1 : 0)
    case .integer(let integer):
      lua_pushinteger(L, integer)
    case .number(let number):
      lua_pushnumber(L, number)
    case .string(let bytes):
      bytes.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { chars in
          _ = lua_pushlstring(L, chars.baseAddress, chars.count)
        }
      }
    case .table(let reference as LuaReference), .function(let reference as LuaReference),
      .userdata(let reference as LuaReference), .thread(let reference):
      reference.push(on: L, into: self)
    }
  }

  /// Pushes `values` after making room for them; false if the stack cannot grow that far.
  func push(_ values: [LuaValue], on L: OpaquePointer) -> Bool {
    guard values.count < 20 || lua_checkstack(L, Int32(clamping: values.count)) != 0 else { return false }
    for value in values { push(value, on: L) }
    return true
  }

  /// The value at `index` of `L`'s stack; tables, functions, userdata and threads become references.
  func value(at index: Int32, on L: OpaquePointer) -> LuaValue {
    switch lua_type(L, index) {
    case LUA_TBOOLEAN:
      return .boolean(lua_toboolean(L, index) != 0)
    case LUA_TNUMBER:
      if lua_isinteger(L, index) != 0 { return .integer(lua_tointegerx(L, index, nil)) }
      return .number(lua_tonumberx(L, index, nil))
    case LUA_TSTRING:
      return .string(bytes(at: index, on: L))
    case LUA_TTABLE:
      return .table(LuaTable(state: self, L: L, index: index))
    case LUA_TFUNCTION:
      return .function(LuaFunction(state: self, L: L, index: index))
    case LUA_TUSERDATA, LUA_TLIGHTUSERDATA:
      return .userdata(LuaUserdata(state: self, L: L, index: index))
    case LUA_TTHREAD:
      return .thread(LuaReference(state: self, L: L, index: index))
    default:
      return .nil
    }
  }

  /// The bytes of the string at `index` (the caller checked it is a string: no conversion happens).
  func bytes(at index: Int32, on L: OpaquePointer) -> [UInt8] {
    var length = 0
    guard let chars = vmlab_tostring(L, index, &length) else { return [] }
    return Array(UnsafeRawBufferPointer(start: chars, count: length))
  }

  /// The string at `index` decoded as UTF-8, or nil for any other type (numbers are not converted).
  func stringIfString(at index: Int32, on L: OpaquePointer) -> String? {
    guard lua_type(L, index) == LUA_TSTRING else { return nil }
    var length = 0
    guard let chars = vmlab_tostring(L, index, &length) else { return nil }
    return String(decoding: UnsafeRawBufferPointer(start: chars, count: length), as: UTF8.self)
  }

  /// The type name error messages use: a metatable's __name when it has one, "no value" for an
  /// absent argument, as luaL_typeerror words it.
  func typeNameForMessages(at index: Int32, on L: OpaquePointer) -> String {
    let type = lua_type(L, index)
    if type == LUA_TNONE { return "no value" }
    // luaL_getmetafield pushes the field only when it is present (rawget: no metamethods run).
    let field = luaL_getmetafield(L, index, "__name")
    if field != LUA_TNIL {
      defer { vmlab_pop(L, 1) }
      if field == LUA_TSTRING, let name = stringIfString(at: -1, on: L) { return name }
    }
    if type == LUA_TLIGHTUSERDATA { return "light userdata" }
    return String(cString: lua_typename(L, type))
  }
}

extension LuaValue {
  /// Lua refuses nil and NaN as table keys.
  var isValidKey: Bool {
    switch self {
    case .nil: false
    case .number(let number): !number.isNaN
    default: true
    }
  }
}
