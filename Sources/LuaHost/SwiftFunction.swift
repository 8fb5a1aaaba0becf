import CLua
import CLuaShim

/// The body of a Swift function called from Lua: it reads its arguments and returns its results.
/// A thrown error becomes a Lua error (catchable with pcall) whose message is the error's
/// description, prefixed with the caller's position as luaL_error does. A thrown LuaError that
/// carries a Lua error value (one that came out of a call into Lua) re-raises that same value.
public typealias LuaFunctionBody = (LuaArguments) throws -> [LuaValue]

/// The Swift side of one Lua-callable function. Lua holds it in a full userdata (the closure's
/// second upvalue) whose __gc releases it, so a collected Lua function frees its Swift closure.
final class SwiftFunctionBox {
  let name: String
  /// Stack index just below the first argument the body sees: 0 for functions, 1 for methods
  /// (whose receiver the body gets separately).
  let base: Int32
  /// Pushes the results itself and returns their number; bodies from the public API are wrapped.
  let body: (LuaArguments) throws -> Int32

  init(name: String, base: Int32, body: @escaping (LuaArguments) throws -> Int32) {
    self.name = name
    self.base = base
    self.body = body
  }
}

/// The single entry point for every Swift function Lua calls (through the C trampoline, which
/// raises any error only after this frame has returned).
private func callSwiftFunction(_ L: OpaquePointer?) -> Int32 {
  guard let L else { return 0 }
  guard let owner = vmlab_host_of(L).pointee.owner else {
    lua_pushstring(L, "the Lua state is closing")
    return -1
  }
  guard let slot = lua_touserdata(L, vmlab_upvalueindex(2)),
    let pointer = slot.load(as: UnsafeMutableRawPointer?.self)
  else {
    lua_pushstring(L, "this Swift function has been released")
    return -1
  }
  let state = Unmanaged<LuaState>.fromOpaque(owner).takeUnretainedValue()
  let box = Unmanaged<SwiftFunctionBox>.fromOpaque(pointer).takeUnretainedValue()
  let previous = state.current
  state.current = L
  defer { state.current = previous }
  let count = Int(lua_gettop(L) - box.base)
  do {
    return try box.body(LuaArguments(state: state, L: L, base: box.base, count: max(count, 0), functionName: box.name))
  } catch {
    state.pushError(error, on: L)
    return -1
  }
}

/// __gc of every box userdata (Swift closures and class payloads): releases the retained object
/// once and clears the slot, so a resurrected userdata cannot release it twice. It needs no
/// LuaState, so it also works while the state is closing.
private func releaseBox(_ L: OpaquePointer?) -> Int32 {
  guard let L, let slot = lua_touserdata(L, 1) else { return 0 }
  let pointerSlot = slot.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
  if let pointer = pointerSlot.pointee {
    pointerSlot.pointee = nil
    Unmanaged<AnyObject>.fromOpaque(pointer).release()
  }
  return 0
}

extension LuaState {
  /// A Lua function that runs `body`.
  public func function(named name: String, _ body: @escaping LuaFunctionBody) -> LuaFunction {
    precondition(isOpen, "the Lua state is closed")
    let L = current
    pushFunction(named: name, on: L, body)
    defer { vmlab_pop(L, 1) }
    return LuaFunction(state: self, L: L, index: -1)
  }

  /// Sets the global `name`, or the field `name` of the global table `table` (created when
  /// absent), to a Lua function that runs `body`.
  public func register(_ name: String, in table: String? = nil, _ body: @escaping LuaFunctionBody) {
    let function = LuaValue.function(function(named: name, body))
    guard let table else {
      self[global: name] = function
      return
    }
    let target: LuaTable
    if let existing = self[global: table].tableValue {
      target = existing
    } else {
      precondition(self[global: table].isNil, "global '\(table)' exists and is not a table")
      target = newTable()
      self[global: table] = .table(target)
    }
    target[name] = function
  }

  func pushFunction(named name: String, on L: OpaquePointer, _ body: @escaping LuaFunctionBody) {
    pushFunction(
      SwiftFunctionBox(name: name, base: 0) { arguments in
        let results = try body(arguments)
        guard arguments.state.push(results, on: arguments.L) else {
          throw LuaError(.runtime, message: "too many results (\(results.count)) from '\(name)'")
        }
        return Int32(results.count)
      }, on: L)
  }

  /// Pushes a Lua function (a C closure through the trampoline) that calls `box`.
  func pushFunction(_ box: SwiftFunctionBox, on L: OpaquePointer) {
    pushBox(box, on: L)
    vmlab_push_swift_function(L, callSwiftFunction, 1)
  }

  /// Pushes a full userdata holding `object` retained; its __gc (shared metatable) releases it.
  func pushBox(_ object: AnyObject, on L: OpaquePointer, metatable: Int32? = nil) {
    let slot = lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer>.size, 0)!
    slot.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(metatable ?? boxMetatable))
    lua_setmetatable(L, -2)
  }

  /// The object a box userdata at `index` holds (nil once finalized).
  func boxedObject(at index: Int32, on L: OpaquePointer) -> AnyObject? {
    guard let slot = lua_touserdata(L, index), let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else {
      return nil
    }
    return Unmanaged<AnyObject>.fromOpaque(pointer).takeUnretainedValue()
  }

  func createBoxMetatable() {
    let L = current
    lua_createtable(L, 0, 2)
    pushReleaseFunction(on: L)
    lua_setfield(L, -2, "__gc")
    lua_pushboolean(L, 0)
    lua_setfield(L, -2, "__metatable")  // scripts cannot read or replace it
    boxMetatable = luaL_ref(L, vmlab_registryindex())
  }

  func pushReleaseFunction(on L: OpaquePointer) {
    vmlab_push_swift_function(L, releaseBox, 0)
  }

  /// Pushes the Lua error value for a Swift error (see LuaFunctionBody).
  func pushError(_ error: Error, on L: OpaquePointer) {
    if let luaError = error as? LuaError, luaError.kind == .memoryLimit {
      // Lua's own memory error value says only "not enough memory": say which limit it was.
      push(.text(luaError.message), on: L)
      return
    }
    if let luaError = error as? LuaError, let value = luaError.value, value.belongs(to: self) {
      push(value, on: L)
      return
    }
    var message = String(describing: error)
    message.withUTF8 { bytes in
      bytes.withMemoryRebound(to: CChar.self) { chars in
        vmlab_push_located_message(L, chars.baseAddress, chars.count)
      }
    }
  }
}

extension LuaValue {
  /// Whether the value can be pushed on `state` (references belong to one state).
  func belongs(to state: LuaState) -> Bool {
    switch self {
    case .table(let reference as LuaReference), .function(let reference as LuaReference),
      .userdata(let reference as LuaReference), .thread(let reference):
      reference.state === state
    default: true
    }
  }
}
