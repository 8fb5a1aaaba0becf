import CLua
import CLuaShim

/// A Lua table seen from Swift. Subscripts and conversions use raw access (no metamethods, so
/// nothing can raise); `get` and `set` honour metamethods inside a protected call.
public final class LuaTable: LuaReference {
  /// Raw read or write. Writing with a nil or NaN key is a programming error (Lua refuses them).
  public subscript(key: LuaValue) -> LuaValue {
    get {
      guard state.isOpen else { return .nil }
      return withPushed { L, table in
        state.push(key, on: L)
        lua_rawget(L, table)
        return state.value(at: -1, on: L)
      }
    }
    set {
      precondition(key.isValidKey, "Lua table keys cannot be nil or NaN")
      guard state.isOpen else { return }
      withPushed { L, table in
        state.push(key, on: L)
        state.push(newValue, on: L)
        lua_rawset(L, table)
      }
    }
  }

  /// `t.name` (raw).
  public subscript(name: String) -> LuaValue {
    get { self[.text(name)] }
    set { self[.text(name)] = newValue }
  }

  /// `t[index]` (raw).
  public subscript(index: Int) -> LuaValue {
    get {
      guard state.isOpen else { return .nil }
      return withPushed { L, table in
        lua_rawgeti(L, table, lua_Integer(index))
        return state.value(at: -1, on: L)
      }
    }
    set { self[.integer(Int64(index))] = newValue }
  }

  /// The raw length (#t without __len): the border of the sequence part.
  public var count: Int {
    guard state.isOpen else { return 0 }
    return withPushed { L, table in Int(lua_rawlen(L, table)) }
  }

  /// Elements 1...count, in order.
  public func array() -> [LuaValue] {
    guard state.isOpen else { return [] }
    return withPushed { L, table in
      let count = Int(lua_rawlen(L, table))
      var values: [LuaValue] = []
      values.reserveCapacity(count)
      for index in 0..<count {
        lua_rawgeti(L, table, lua_Integer(index + 1))
        values.append(state.value(at: -1, on: L))
        vmlab_pop(L, 1)
      }
      return values
    }
  }

  /// Every key and value (raw traversal).
  public func dictionary() -> [LuaValue: LuaValue] {
    var pairs: [LuaValue: LuaValue] = [:]
    forEach { key, value in pairs[key] = value }
    return pairs
  }

  /// The fields with string keys, decoded as UTF-8.
  public func fields() -> [String: LuaValue] {
    var fields: [String: LuaValue] = [:]
    forEach { key, value in
      if let name = key.stringValue { fields[name] = value }
    }
    return fields
  }

  /// Calls `body` for each pair (raw traversal, in Lua's order).
  public func forEach(_ body: (LuaValue, LuaValue) throws -> Void) rethrows {
    guard state.isOpen else { return }
    try withPushed { L, table in
      lua_pushnil(L)
      // lua_next raises only for a key that is not in the table; keys come from lua_next itself.
      while lua_next(L, table) != 0 {
        let key = state.value(at: -2, on: L)
        let value = state.value(at: -1, on: L)
        vmlab_pop(L, 1)
        try body(key, value)
      }
    }
  }

  /// `t[key]` with metamethods (__index may run Lua code, so this is a protected call).
  public func get(_ key: LuaValue) throws -> LuaValue {
    try state.checkOpen()
    return try withPushed { L, table in
      state.push(key, on: L)
      let status = vmlab_gettable(L, table)
      guard status == LUA_OK else { throw state.popError(status: status) }
      return state.value(at: -1, on: L)
    }
  }

  /// `t[key] = value` with metamethods (__newindex may run Lua code), protected.
  public func set(_ key: LuaValue, _ value: LuaValue) throws {
    try state.checkOpen()
    try withPushed { L, table in
      state.push(key, on: L)
      state.push(value, on: L)
      let status = vmlab_settable(L, table)
      guard status == LUA_OK else { throw state.popError(status: status) }
    }
  }

  /// The table's metatable (raw: __metatable is not consulted).
  public var metatable: LuaTable? {
    guard state.isOpen else { return nil }
    return withPushed { L, table in
      guard lua_getmetatable(L, table) != 0 else { return nil }
      return LuaTable(state: state, L: L, index: -1)
    }
  }

  public func setMetatable(_ metatable: LuaTable?) {
    guard state.isOpen else { return }
    withPushed { L, table in
      if let metatable { metatable.push(on: L, into: state) } else { lua_pushnil(L) }
      lua_setmetatable(L, table)
    }
  }
}
