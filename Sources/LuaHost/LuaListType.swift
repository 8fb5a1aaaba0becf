import CLua
import CLuaShim

/// A kind of list returned to Lua: a plain sequence table (so `#`, `ipairs` and `[i]` work as
/// usual) whose metatable's __index is a table of methods. Every list type has `where(fn)`, which
/// returns a new list of the same type with the items for which `fn(item)` is truthy; more
/// methods can be added with `method`.
public final class LuaListType {
  public let name: String
  weak var state: LuaState?
  let metatable: Int32
  let methods: Int32

  init(name: String, state: LuaState) {
    self.name = name
    self.state = state
    let L = state.current
    lua_createtable(L, 0, 4)
    lua_pushvalue(L, -1)
    methods = luaL_ref(L, vmlab_registryindex())
    lua_createtable(L, 0, 2)
    lua_rotate(L, -2, 1)  // metatable below methods
    lua_setfield(L, -2, "__index")
    state.push(.text(name), on: L)
    lua_setfield(L, -2, "__name")
    // print(list) and tostring(list) show the items, not the table's address.
    let typeName = name
    state.pushFunction(
      SwiftFunctionBox(name: "__tostring", base: 0) { arguments in
        let L = arguments.L
        guard lua_type(L, 1) == LUA_TTABLE else { throw arguments.typeError(1, expected: typeName) }
        let list = LuaTable(state: arguments.state, L: L, index: 1)
        arguments.state.push(.text(LuaDisplay(state: arguments.state).line(forList: list, named: typeName)), on: L)
        return 1
      }, on: L)
    lua_setfield(L, -2, "__tostring")
    metatable = luaL_ref(L, vmlab_registryindex())
    addMethod(SwiftFunctionBox(name: "where", base: 1, body: LuaListType.filter))
  }

  /// Adds `list:name(...)`: `body` gets the list and the arguments after it.
  public func method(_ name: String, _ body: @escaping (LuaTable, LuaArguments) throws -> [LuaValue]) {
    let typeName = self.name
    addMethod(
      SwiftFunctionBox(name: name, base: 1) { arguments in
        let L = arguments.L
        guard lua_type(L, 1) == LUA_TTABLE else {
          throw LuaArgumentError(
            position: 0, function: name,
            problem: "\(typeName) expected, got \(arguments.state.typeNameForMessages(at: 1, on: L))", isSelf: true)
        }
        let list = LuaTable(state: arguments.state, L: L, index: 1)
        let results = try body(list, arguments)
        guard arguments.state.push(results, on: L) else {
          throw LuaError(.runtime, message: "too many results (\(results.count)) from '\(name)'")
        }
        return Int32(results.count)
      })
  }

  /// A new list holding `items` in order.
  public func makeList(_ items: [LuaValue]) -> LuaTable {
    guard let state else { preconditionFailure("the Lua state of list type '\(name)' is gone") }
    let list = state.newTable(array: items)
    list.withPushed { L, index in
      lua_rawgeti(L, vmlab_registryindex(), lua_Integer(metatable))
      lua_setmetatable(L, index)
    }
    return list
  }

  private func addMethod(_ box: SwiftFunctionBox) {
    guard let state else { return }
    let L = state.current
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(methods))
    state.push(.text(box.name), on: L)
    state.pushFunction(box, on: L)
    lua_rawset(L, -3)
    vmlab_pop(L, 1)
  }

  /// list:where(fn). Works on the stack directly: the list at 1, fn at 2, the result built at 3.
  private static func filter(_ arguments: LuaArguments) throws -> Int32 {
    let L = arguments.L
    guard lua_type(L, 1) == LUA_TTABLE else {
      throw LuaArgumentError(
        position: 0, function: "where",
        problem: "list expected, got \(arguments.state.typeNameForMessages(at: 1, on: L))", isSelf: true)
    }
    guard lua_type(L, 2) == LUA_TFUNCTION else { throw arguments.typeError(1, expected: "function") }
    lua_settop(L, 2)
    let count = lua_Integer(lua_rawlen(L, 1))
    lua_createtable(L, 0, 0)
    var kept: lua_Integer = 0
    var position: lua_Integer = 1
    while position <= count {
      lua_pushvalue(L, 2)
      lua_rawgeti(L, 1, position)
      let status = vmlab_pcall(L, 1, 1)
      guard status == LUA_OK else { throw arguments.state.popError(status: status) }
      let keep = lua_toboolean(L, -1) != 0
      vmlab_pop(L, 1)
      if keep {
        kept += 1
        lua_rawgeti(L, 1, position)
        lua_rawseti(L, 3, kept)
      }
      position += 1
    }
    if lua_getmetatable(L, 1) != 0 {
      lua_setmetatable(L, 3)
    }
    return 1
  }
}

extension LuaState {
  /// The list type named `name`, created on first use. "List" is the default type.
  public func listType(named name: String) -> LuaListType {
    if let existing = listTypes[name] { return existing }
    let type = LuaListType(name: name, state: self)
    listTypes[name] = type
    return type
  }

  /// A list of the default type "List".
  public func makeList(_ items: [LuaValue]) -> LuaTable {
    listType(named: "List").makeList(items)
  }
}
