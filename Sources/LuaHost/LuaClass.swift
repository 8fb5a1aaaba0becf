import CLua
import CLuaShim

/// A kind of Lua object backed by a Swift value: a metatable named `name` whose __index serves
/// properties computed in Swift and methods, with __tostring, __eq and a __gc that releases the
/// payload.
///
/// Payloads are identities (an id, a small struct), not pointers into the engine: a handle that
/// outlives what it names (a checkpoint merged away) fails with a clear error from the engine
/// instead of touching freed memory (DESIGN.md, LuaHost).
///
/// Reading a field that is neither a property nor a method is an error ("VM has no field or
/// method 'nmae'"), so typos do not pass silently as nil.
public final class LuaClass<Payload> {
  /// The metatable's __name: what `tostring` falls back to and argument errors call the type.
  public let name: String
  weak var state: LuaState?
  let metatable: Int32
  let metatableIdentity: UnsafeRawPointer?
  /// name → method function, or → index into `getters` for a property.
  let members: Int32
  var getters: [(Payload) throws -> LuaValue] = []
  var setters: [String: (Payload, LuaValue) throws -> Void] = [:]
  var describe: (Payload) -> String
  var equal: ((Payload, Payload) -> Bool)?

  /// The Swift object a userdata of this class holds.
  final class Box {
    let payload: Payload
    init(_ payload: Payload) { self.payload = payload }
  }

  init(name: String, state: LuaState) {
    self.name = name
    self.state = state
    let className = name
    describe = { payload in "\(className): \(payload)" }
    let L = state.current
    lua_createtable(L, 0, 0)
    members = luaL_ref(L, vmlab_registryindex())
    lua_createtable(L, 0, 8)
    metatableIdentity = lua_topointer(L, -1)
    metatable = luaL_ref(L, vmlab_registryindex())
    installMetamethods(state: state, L: L)
  }

  // MARK: Defining the class

  /// A read-only property: `obj.name` runs `get` on the payload.
  public func property(_ name: String, _ get: @escaping (Payload) throws -> LuaValue) {
    addProperty(name, get)
  }

  /// A property that scripts may also assign: `obj.name = value` runs `set`.
  public func property(
    _ name: String, get: @escaping (Payload) throws -> LuaValue, set: @escaping (Payload, LuaValue) throws -> Void
  ) {
    addProperty(name, get)
    setters[name] = set
  }

  /// A method: `obj:name(...)` runs `body` with the payload and the arguments after the receiver
  /// (numbered from 1, as Lua numbers a method's arguments in its messages).
  public func method(_ name: String, _ body: @escaping (Payload, LuaArguments) throws -> [LuaValue]) {
    guard let state else { return }
    let box = SwiftFunctionBox(name: name, base: 1) { arguments in
      let payload = try self.receiver(of: name, arguments: arguments)
      let results = try body(payload, arguments)
      guard arguments.state.push(results, on: arguments.L) else {
        throw LuaError(.runtime, message: "too many results (\(results.count)) from '\(name)'")
      }
      return Int32(results.count)
    }
    let L = state.current
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(members))
    state.push(.text(name), on: L)
    state.pushFunction(box, on: L)
    lua_rawset(L, -3)
    vmlab_pop(L, 1)
  }

  /// The properties that show an object as a row of a table (the REPL shows a list of these
  /// objects so); the first one names the object where it appears inside another's row.
  public func columns(_ properties: [String]) {
    guard let state, let metatableIdentity else { return }
    state.displayColumns[metatableIdentity] = properties
  }

  /// What `tostring(obj)` gives (default: "Name: payload").
  public func toString(_ describe: @escaping (Payload) -> String) {
    self.describe = describe
  }

  /// What `a == b` means for two objects of this class (default: same payload when Payload is
  /// Equatable, otherwise only the same userdata).
  public func equality(_ equal: @escaping (Payload, Payload) -> Bool) {
    self.equal = equal
  }

  // MARK: Objects

  /// A new Lua object holding `payload`.
  public func wrap(_ payload: Payload) -> LuaValue {
    guard let state, state.isOpen else { return .nil }
    let L = state.current
    push(payload, on: L, state: state)
    defer { vmlab_pop(L, 1) }
    return state.value(at: -1, on: L)
  }

  /// The payload of `value` if it is an object of this class.
  public func payload(of value: LuaValue) -> Payload? {
    value.userdataValue?.payload(as: self)
  }

  func push(_ payload: Payload, on L: OpaquePointer, state: LuaState) {
    state.pushBox(Box(payload), on: L, metatable: metatable)
  }

  /// The payload of the userdata at `index` if its metatable is this class's (compared by
  /// address: no string lookups, nothing that can raise).
  func payload(at index: Int32, on L: OpaquePointer) -> Payload? {
    guard lua_type(L, index) == LUA_TUSERDATA, lua_getmetatable(L, index) != 0 else { return nil }
    let matches = lua_topointer(L, -1) == metatableIdentity
    vmlab_pop(L, 1)
    guard matches, let slot = lua_touserdata(L, index), let pointer = slot.load(as: UnsafeMutableRawPointer?.self)
    else { return nil }
    return Unmanaged<Box>.fromOpaque(pointer).takeUnretainedValue().payload
  }

  // MARK: Internals

  private func addProperty(_ name: String, _ get: @escaping (Payload) throws -> LuaValue) {
    guard let state else { return }
    getters.append(get)
    let L = state.current
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(members))
    state.push(.text(name), on: L)
    lua_pushinteger(L, lua_Integer(getters.count - 1))
    lua_rawset(L, -3)
    vmlab_pop(L, 1)
  }

  /// The payload at stack index 1, or a "bad self" error for a method called on something else
  /// (typically `obj.method()` instead of `obj:method()`).
  func receiver(of function: String, arguments: LuaArguments) throws -> Payload {
    if let payload = payload(at: 1, on: arguments.L) { return payload }
    let got = arguments.state.typeNameForMessages(at: 1, on: arguments.L)
    throw LuaArgumentError(position: 0, function: function, problem: "\(name) expected, got \(got)", isSelf: true)
  }

  private func metamethod(_ name: String, _ body: @escaping (LuaArguments) throws -> Int32) -> SwiftFunctionBox {
    SwiftFunctionBox(name: name, base: 0, body: body)
  }

  private func installMetamethods(state: LuaState, L: OpaquePointer) {
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(metatable))
    state.push(.text(name), on: L)
    lua_setfield(L, -2, "__name")
    state.push(.text(name), on: L)
    lua_setfield(L, -2, "__metatable")  // getmetatable(obj) gives the name; scripts cannot swap it
    state.pushReleaseFunction(on: L)
    lua_setfield(L, -2, "__gc")

    // The metamethods hold the class strongly: Lua keeps the class alive as long as objects can
    // reach it, and the class holds only registry numbers, so there is no cycle.
    state.pushFunction(metamethod("__index") { arguments in try self.index(arguments) }, on: L)
    lua_setfield(L, -2, "__index")
    state.pushFunction(metamethod("__newindex") { arguments in try self.newIndex(arguments) }, on: L)
    lua_setfield(L, -2, "__newindex")
    state.pushFunction(
      metamethod("__tostring") { arguments in
        let payload = try self.receiver(of: "__tostring", arguments: arguments)
        arguments.state.push(.text(self.describe(payload)), on: arguments.L)
        return 1
      }, on: L)
    lua_setfield(L, -2, "__tostring")
    state.pushFunction(
      metamethod("__eq") { arguments in
        let L = arguments.L
        var same = false
        if let equal = self.equal, let left = self.payload(at: 1, on: L), let right = self.payload(at: 2, on: L) {
          same = equal(left, right)
        }
        lua_pushboolean(L, same ? 1 : 0)
        return 1
      }, on: L)
    lua_setfield(L, -2, "__eq")
    vmlab_pop(L, 1)
  }

  /// __index(obj, key): a method (found in `members`), or a property getter's result.
  private func index(_ arguments: LuaArguments) throws -> Int32 {
    let L = arguments.L
    let payload = try receiver(of: "__index", arguments: arguments)
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(members))
    lua_pushvalue(L, 2)
    let kind = lua_rawget(L, -2)
    if kind == LUA_TFUNCTION { return 1 }
    if kind == LUA_TNUMBER {
      let getter = getters[Int(lua_tointegerx(L, -1, nil))]
      vmlab_pop(L, 2)
      arguments.state.push(try getter(payload), on: L)
      return 1
    }
    throw LuaError(.runtime, message: "\(name) has no field or method \(describeKey(arguments[2]))")
  }

  /// __newindex(obj, key, value): a settable property, or an error naming the field.
  private func newIndex(_ arguments: LuaArguments) throws -> Int32 {
    let payload = try receiver(of: "__newindex", arguments: arguments)
    let key = arguments[2]
    if let field = key.stringValue, let set = setters[field] {
      try set(payload, arguments[3])
      return 0
    }
    if let field = key.stringValue, getters.indices.contains(memberIndex(field) ?? -1) {
      throw LuaError(.runtime, message: "field '\(field)' of \(name) is read-only")
    }
    throw LuaError(.runtime, message: "cannot set \(describeKey(key)) of \(name): it has no such field")
  }

  private func memberIndex(_ field: String) -> Int? {
    guard let state else { return nil }
    let L = state.current
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(members))
    defer { vmlab_pop(L, 2) }
    state.push(.text(field), on: L)
    guard lua_rawget(L, -2) == LUA_TNUMBER else { return nil }
    return Int(lua_tointegerx(L, -1, nil))
  }

  private func describeKey(_ key: LuaValue) -> String {
    if let field = key.stringValue { return "'\(field)'" }
    return "[\(key)]"
  }
}

extension LuaState {
  /// Defines a class of Lua objects holding `Payload` values. Objects of one class are equal when
  /// their payloads are (Payload is Equatable).
  public func defineClass<Payload: Equatable>(_ name: String, payload: Payload.Type) -> LuaClass<Payload> {
    let luaClass = LuaClass<Payload>(name: name, state: self)
    luaClass.equal = { $0 == $1 }
    return luaClass
  }

  /// Defines a class of Lua objects holding `Payload` values; set `equality` to compare them.
  public func defineClass<Payload>(_ name: String, payload: Payload.Type) -> LuaClass<Payload> {
    LuaClass<Payload>(name: name, state: self)
  }
}
