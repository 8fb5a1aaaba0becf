import CLua
import CLuaShim

/// A userdata (or light userdata) seen from Swift. Objects of a LuaClass are userdata; read their
/// payload with `LuaClass.payload(of:)` or `payload(as:)`.
public final class LuaUserdata: LuaReference {
  /// The Swift payload if this is an object of `luaClass`, nil otherwise.
  public func payload<Payload>(as luaClass: LuaClass<Payload>) -> Payload? {
    guard state.isOpen else { return nil }
    return withPushed { L, index in luaClass.payload(at: index, on: L) }
  }

  /// `u[key]` through the metatable's __index (a property of a class object), protected.
  public func get(_ key: LuaValue) throws -> LuaValue {
    try state.checkOpen()
    return try withPushed { L, userdata in
      state.push(key, on: L)
      let status = vmlab_gettable(L, userdata)
      guard status == LUA_OK else { throw state.popError(status: status) }
      return state.value(at: -1, on: L)
    }
  }

  /// The address of its metatable (nil without one): which class the object belongs to.
  var metatableIdentity: UnsafeRawPointer? {
    guard state.isOpen else { return nil }
    return withPushed { L, userdata in
      guard lua_getmetatable(L, userdata) != 0 else { return nil }
      return lua_topointer(L, -1)
    }
  }
}
