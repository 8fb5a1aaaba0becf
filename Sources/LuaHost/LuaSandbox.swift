/// What a sandboxed state allows. Libraries: base, coroutine, table, string, math, utf8 and a
/// package library for Lua source modules; no io, os or debug, no C modules, and load, loadfile,
/// dofile and require accept source text only (malformed bytecode can crash the interpreter).
public struct LuaSandbox: Sendable, Equatable {
  /// VM instructions each outermost call from Swift may run (nil: unlimited).
  public var instructionBudget: Int?
  /// Bytes the state may hold (nil: unlimited).
  public var memoryLimit: Int?

  public init(instructionBudget: Int? = 10_000_000, memoryLimit: Int? = 64 << 20) {
    self.instructionBudget = instructionBudget
    self.memoryLimit = memoryLimit
  }
}
