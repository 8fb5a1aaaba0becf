import CLua
import CLuaShim

/// One Lua interpreter: a lua_State with its standard libraries, the Swift functions, classes and
/// list types registered into it, and its limits.
///
/// Rules this type keeps (DESIGN.md rule 5): Lua code runs only through `lua_pcallk` (in C, with a
/// message handler that takes a traceback); Swift never calls an API function that can raise
/// outside a protected call, except allocation, which the allocator never refuses while a Swift
/// frame is innermost.
///
/// Not thread-safe: use a state from one thread. Swift closures registered into the state often
/// capture it, which makes a reference cycle; call `close()` when done.
public final class LuaState {
  /// The thread Swift currently talks to: the main thread, or the coroutine that called the Swift
  /// function now running. Every stack operation goes to this thread.
  var current: OpaquePointer
  let main: OpaquePointer
  private(set) public var isOpen = true
  /// Registry references of the metatables created once per state.
  var boxMetatable: Int32 = LUA_NOREF
  var listTypes: [String: LuaListType] = [:]
  /// The properties each class shows as table columns (`LuaClass.columns`), by metatable address.
  var displayColumns: [UnsafeRawPointer: [String]] = [:]

  /// A full interpreter with every standard library.
  public convenience init() throws {
    try self.init(libraries: .all)
  }

  /// A sandboxed interpreter: no io, os, debug or C modules; `load`, `loadfile`, `dofile` and
  /// `require` accept source text only; the sandbox's limits apply.
  public convenience init(sandbox: LuaSandbox) throws {
    try self.init(libraries: .sandboxed)
    instructionBudget = sandbox.instructionBudget
    memoryLimit = sandbox.memoryLimit
  }

  enum Libraries { case all, sandboxed }

  init(libraries: Libraries) throws {
    guard let L = vmlab_newstate() else {
      throw LuaError(.memory, message: "cannot create a Lua state: not enough memory")
    }
    main = L
    current = L
    vmlab_host_of(L).pointee.owner = Unmanaged.passUnretained(self).toOpaque()
    let status = vmlab_open_libraries(L, libraries == .sandboxed ? 1 : 0)
    if status != LUA_OK {
      let error = popError(status: status)
      close()
      throw error
    }
    createBoxMetatable()
    _ = listType(named: "List")
  }

  deinit {
    close()
  }

  /// Closes the interpreter: finalizers run, Swift payloads and closures are released. References
  /// that outlive the state become inert (reads give nil).
  public func close() {
    guard isOpen else { return }
    isOpen = false
    listTypes = [:]
    vmlab_close(main)
  }

  // MARK: Running code

  /// Compiles a chunk without running it. `mode` "t" refuses binary chunks.
  public func load(_ code: String, name: LuaChunkName = .commandLine, mode: LuaChunkMode = .text) throws -> LuaFunction
  {
    try load(bytes: Array(code.utf8), name: name, mode: mode)
  }

  public func load(bytes: [UInt8], name: LuaChunkName, mode: LuaChunkMode = .text) throws -> LuaFunction {
    try checkOpen()
    let L = current
    let status = bytes.withUnsafeBufferPointer { buffer in
      buffer.withMemoryRebound(to: CChar.self) { chars in
        vmlab_load(L, chars.baseAddress, chars.count, name.rawValue, mode.rawValue)
      }
    }
    guard status == LUA_OK else { throw popError(status: status) }
    return popFunction(L)
  }

  /// Compiles a file; its chunk name is "@path", so messages say "path:line:".
  public func load(file path: String, mode: LuaChunkMode = .text) throws -> LuaFunction {
    try checkOpen()
    let L = current
    let status = vmlab_loadfile(L, path, mode.rawValue)
    guard status == LUA_OK else { throw popError(status: status) }
    return popFunction(L)
  }

  /// Compiles and runs a chunk; returns what it returns.
  @discardableResult
  public func run(_ code: String, name: LuaChunkName = .commandLine) throws -> [LuaValue] {
    try load(code, name: name).call()
  }

  /// Compiles and runs a file; `arguments` become the chunk's `...`.
  @discardableResult
  public func run(file path: String, arguments: [LuaValue] = []) throws -> [LuaValue] {
    try load(file: path).call(arguments: arguments)
  }

  // MARK: Globals and values

  /// The global table (_G).
  public var globals: LuaTable {
    precondition(isOpen, "the Lua state is closed")
    let L = current
    lua_rawgeti(L, vmlab_registryindex(), lua_Integer(LUA_RIDX_GLOBALS))
    defer { vmlab_pop(L, 1) }
    return LuaTable(state: self, L: L, index: -1)
  }

  /// Reads or writes a global variable (raw access to _G).
  public subscript(global name: String) -> LuaValue {
    get { globals[name] }
    set { globals[name] = newValue }
  }

  /// A new table holding `array` at 1...n and `fields` by name.
  public func newTable(array: [LuaValue] = [], fields: [String: LuaValue] = [:]) -> LuaTable {
    precondition(isOpen, "the Lua state is closed")
    let L = current
    lua_createtable(L, Int32(clamping: array.count), Int32(clamping: fields.count))
    lua_checkstack(L, 2)
    for (offset, value) in array.enumerated() {
      push(value, on: L)
      lua_rawseti(L, -2, lua_Integer(offset + 1))
    }
    for (key, value) in fields {
      push(.text(key), on: L)
      push(value, on: L)
      lua_rawset(L, -3)
    }
    defer { vmlab_pop(L, 1) }
    return LuaTable(state: self, L: L, index: -1)
  }

  /// A new table with the pairs of `dictionary`; nil and NaN keys are skipped (Lua refuses them).
  public func newTable(_ dictionary: [LuaValue: LuaValue]) -> LuaTable {
    let table = newTable()
    for (key, value) in dictionary where key.isValidKey { table[key] = value }
    return table
  }

  // MARK: Memory, limits, garbage

  /// Bytes Lua holds now.
  public var memoryInUse: Int { Int(vmlab_host_of(main).pointee.memory_used) }

  /// Allocations that would take `memoryInUse` past this many bytes fail with a memory error
  /// ("memory limit of N bytes exceeded"). nil: no limit.
  public var memoryLimit: Int? {
    get {
      let limit = vmlab_host_of(main).pointee.memory_limit
      return limit == 0 ? nil : Int(limit)
    }
    set { vmlab_set_memory_limit(main, newValue.map { Swift.max(1, $0) } ?? 0) }
  }

  /// Each outermost call from Swift into Lua (a script run, a callback) may execute this many VM
  /// instructions (to within 1000) before it fails with "instruction budget of N exceeded".
  /// nil: no budget. Applies to coroutines created after it is set.
  public var instructionBudget: Int? {
    get {
      let budget = vmlab_host_of(main).pointee.instruction_budget
      return budget == 0 ? nil : Int(budget)
    }
    set { vmlab_set_instruction_budget(main, Int64(newValue ?? 0)) }
  }

  /// Stops the running Lua code at its next instruction (in whichever coroutine it runs) with an
  /// `.interrupted` error, which `pcall` cannot hold back. Safe from any thread. Nothing watches
  /// for it in between: the request itself installs the hook that stops the code, as `lua.c` does
  /// from its signal handler, so plain Lua runs at full speed.
  public func interrupt() {
    vmlab_request_interrupt(main)
  }

  /// Runs `body` with Ctrl-C (SIGINT) interrupting the Lua code it runs, as the standalone `lua`
  /// does, instead of ending the process; a second Ctrl-C before the code stops ends it as usual.
  /// An engine call under way finishes first: the code stops at its next Lua instruction.
  public func interruptingOnSIGINT<T>(_ body: () throws -> T) rethrows -> T {
    vmlab_catch_sigint(main)
    defer { vmlab_release_sigint() }
    return try body()
  }

  /// Runs a full garbage collection cycle (finalizers included).
  public func collectGarbage() {
    guard isOpen else { return }
    vmlab_collect_garbage(current)
  }

  /// What `tostring(value)` gives (honouring __tostring), or a plain description when it fails.
  public func describe(_ value: LuaValue) -> String {
    switch value {
    case .string(let bytes): return String(decoding: bytes, as: UTF8.self)
    case .nil, .boolean, .integer: return value.description
    default: break
    }
    guard isOpen else { return value.description }
    let L = current
    let top = lua_gettop(L)
    defer { lua_settop(L, top) }
    lua_checkstack(L, 4)
    push(value, on: L)
    guard vmlab_tolstring(L, -1) == LUA_OK, let text = stringIfString(at: -1, on: L) else { return value.description }
    return text
  }

  // MARK: Internals

  func checkOpen() throws {
    guard isOpen else { throw LuaError(.runtime, message: "the Lua state is closed") }
  }

  private func popFunction(_ L: OpaquePointer) -> LuaFunction {
    defer { vmlab_pop(L, 1) }
    return LuaFunction(state: self, L: L, index: -1)
  }

  /// Pops the triple vmlab_pcall and friends push on failure, as a LuaError.
  func popError(status: Int32) -> LuaError {
    let L = current
    defer { vmlab_pop(L, 3) }
    let value = self.value(at: -3, on: L)
    let message = stringIfString(at: -2, on: L) ?? ""
    let traceback = stringIfString(at: -1, on: L)
    let host = vmlab_host_of(main).pointee
    let limitHit = host.memory_limit_hit != 0
    let budgetHit = host.instruction_budget != 0 && host.instructions > host.instruction_budget
    let interrupted = host.interrupt_requested != 0
    // The request is spent once the error reaches the outermost caller from Swift.
    if interrupted && host.protected_depth == 0 { vmlab_host_of(main).pointee.interrupt_requested = 0 }
    switch status {
    case LUA_ERRSYNTAX:
      return LuaError(.syntax, message: message, value: value)
    case LUA_ERRMEM where limitHit:
      return LuaError(
        .memoryLimit, message: "memory limit of \(host.memory_limit) bytes exceeded", traceback: traceback, value: value
      )
    case LUA_ERRMEM:
      return LuaError(.memory, message: message, traceback: traceback, value: value)
    case LUA_ERRERR:
      return LuaError(.errorHandler, message: message, traceback: traceback, value: value)
    case vmlab_errfile():
      return LuaError(.file, message: message, value: value)
    default:
      if interrupted {
        return LuaError(.interrupted, message: message, traceback: traceback, value: value)
      }
      if budgetHit {
        return LuaError(.instructionBudget, message: message, traceback: traceback, value: value)
      }
      if limitHit && message.contains("memory limit of") {
        return LuaError(.memoryLimit, message: message, traceback: traceback, value: value)
      }
      return LuaError(.runtime, message: message, traceback: traceback, value: value)
    }
  }
}

/// What a chunk is called in messages and tracebacks, following the standalone interpreter.
public struct LuaChunkName: Sendable, Hashable {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  /// "@path": messages say "path:line:".
  public static func file(_ path: String) -> LuaChunkName { LuaChunkName(rawValue: "@" + path) }
  /// "=(command line)", the name lua gives -e chunks.
  public static let commandLine = LuaChunkName(rawValue: "=(command line)")
  /// "=stdin".
  public static let stdin = LuaChunkName(rawValue: "=stdin")
  /// "=name": messages say "name:line:".
  public static func named(_ name: String) -> LuaChunkName { LuaChunkName(rawValue: "=" + name) }
}

/// Which chunk encodings load accepts. Binary chunks can crash the interpreter when malformed, so
/// text is the default.
public enum LuaChunkMode: String, Sendable {
  case text = "t"
  case binary = "b"
  case textOrBinary = "bt"
}
