/// An error raised while Lua code loaded or ran, as Swift sees it.
///
/// `@unchecked Sendable` because `Error` requires it: `value` refers into the Lua state and must only
/// be used on the thread that owns that state; everything else is plain data.
public struct LuaError: Error, CustomStringConvertible, @unchecked Sendable {
  public enum Kind: Sendable, Equatable {
    /// The chunk did not compile; the message starts with "chunkname:line:".
    case syntax
    /// A runtime error (including errors thrown by Swift functions called from Lua).
    case runtime
    /// Memory allocation failed outside any configured limit.
    case memory
    /// The state's memory limit refused an allocation.
    case memoryLimit
    /// The state's instruction budget ran out.
    case instructionBudget
    /// `LuaState.interrupt()` or Ctrl-C stopped the code.
    case interrupted
    /// The message handler itself failed.
    case errorHandler
    /// A file could not be opened or read.
    case file
  }

  public var kind: Kind
  /// The error as text: the error string, or what __tostring made of a non-string error value.
  public var message: String
  /// "stack traceback:\n\t..." taken where the error was raised; nil for syntax and memory errors.
  public var traceback: String?
  /// The error value itself (a string, or whatever `error(...)` was given). Swift functions that
  /// rethrow a LuaError hand this same value back to Lua, so `pcall` sees what was raised.
  public var value: LuaValue?

  public init(_ kind: Kind = .runtime, message: String, traceback: String? = nil, value: LuaValue? = nil) {
    self.kind = kind
    self.message = message
    self.traceback = traceback
    self.value = value
  }

  public var description: String {
    guard let traceback else { return message }
    return message + "\n" + traceback
  }
}

/// A bad argument passed to a Swift function, worded as Lua's own argument errors:
/// "bad argument #1 to 'read' (number expected, got string)".
public struct LuaArgumentError: Error, CustomStringConvertible, Sendable {
  public var position: Int
  public var function: String
  public var problem: String
  /// A method's receiver (`obj:method()` called on something else) is reported as "bad self".
  public var isSelf: Bool

  public init(position: Int, function: String, problem: String, isSelf: Bool = false) {
    self.position = position
    self.function = function
    self.problem = problem
    self.isSelf = isSelf
  }

  public var description: String {
    if isSelf { return "calling '\(function)' on bad self (\(problem))" }
    return "bad argument #\(position) to '\(function)' (\(problem))"
  }
}
