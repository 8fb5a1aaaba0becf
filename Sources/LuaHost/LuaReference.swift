import CLua
import CLuaShim

/// A Lua object (table, function, userdata, thread) kept alive from Swift through a registry
/// reference; released when the Swift reference goes away.
///
/// A reference keeps its state alive. After `LuaState.close()` it is inert: pushing it gives nil.
public class LuaReference {
  public let state: LuaState
  let reference: Int32
  /// The object's address (lua_topointer), fixed while the reference keeps it alive: Swift-side
  /// identity for equality and hashing without touching the stack.
  let identity: UnsafeRawPointer?

  /// References the value at `index` of `L`'s stack (the stack is left as it was).
  init(state: LuaState, L: OpaquePointer, index: Int32) {
    self.state = state
    lua_pushvalue(L, index)
    identity = lua_topointer(L, -1)
    reference = luaL_ref(L, vmlab_registryindex())
  }

  deinit {
    if state.isOpen {
      luaL_unref(state.current, vmlab_registryindex(), reference)
    }
  }

  /// Pushes the referenced object on `L` (a thread of `target`, which must be this reference's state).
  func push(on L: OpaquePointer, into target: LuaState) {
    precondition(target === state, "a Lua reference was used with a state other than its own")
    if state.isOpen {
      lua_rawgeti(L, vmlab_registryindex(), lua_Integer(reference))
    } else {
      lua_pushnil(L)
    }
  }

  /// Runs `body` with the object pushed on the current thread, then pops it (and whatever `body`
  /// left above it).
  func withPushed<Result>(_ body: (OpaquePointer, Int32) throws -> Result) rethrows -> Result {
    let L = state.current
    let top = lua_gettop(L)
    lua_checkstack(L, 4)
    push(on: L, into: state)
    defer { lua_settop(L, top) }
    return try body(L, top + 1)
  }
}
