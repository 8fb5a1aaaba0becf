import CLua
import CLuaShim

/// A Lua function (or a Swift function registered into Lua) that Swift can call. Calls always go
/// through lua_pcallk: an error comes back as a thrown LuaError with its traceback.
public final class LuaFunction: LuaReference {
  @discardableResult
  public func call(_ arguments: LuaValue...) throws -> [LuaValue] {
    try call(arguments: arguments)
  }

  @discardableResult
  public func call(arguments: [LuaValue]) throws -> [LuaValue] {
    try state.checkOpen()
    let L = state.current
    let base = lua_gettop(L)
    guard lua_checkstack(L, Int32(clamping: arguments.count + 1)) != 0 else {
      throw LuaError(.runtime, message: "too many arguments (\(arguments.count)) for a Lua call")
    }
    push(on: L, into: state)
    for argument in arguments { state.push(argument, on: L) }
    let status = vmlab_pcall(L, Int32(arguments.count), vmlab_multret())
    guard status == LUA_OK else { throw state.popError(status: status) }
    defer { lua_settop(L, base) }
    let top = lua_gettop(L)
    if top == base { return [] }
    return (base + 1...top).map { state.value(at: $0, on: L) }
  }
}
