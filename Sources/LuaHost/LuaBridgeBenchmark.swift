import CLua
import CLuaShim

/// Nanoseconds per call measured by `LuaBridgeBenchmark.measure`.
public struct LuaBridgeMeasurement: Sendable, CustomStringConvertible {
  public var iterations: Int
  /// A Swift function with no arguments and no results, called from a Lua loop (loop cost removed).
  public var bridgedCall: Double
  /// A Swift function taking a string and returning it (string conversions both ways).
  public var bridgedEchoCall: Double
  /// A Lua function with an empty body, called from the same loop (loop cost removed).
  public var luaCall: Double
  /// One iteration of the empty Lua loop.
  public var loopIteration: Double

  public var description: String {
    func format(_ value: Double) -> String { String(Double(Int(value * 10)) / 10) }
    return "bridged call \(format(bridgedCall)) ns, bridged echo(string) \(format(bridgedEchoCall)) ns, "
      + "Lua call \(format(luaCall)) ns, loop \(format(loopIteration)) ns per iteration (\(iterations) iterations)"
  }
}

/// A micro-measurement of the bridge's per-call cost, for the benchmark script (timings are not
/// asserted by tests). The target is under 250 ns per bridged call in release builds.
public enum LuaBridgeBenchmark {
  public static func measure(iterations: Int = 2_000_000) throws -> LuaBridgeMeasurement {
    let state = try LuaState()
    defer { state.close() }
    state.register("nothing") { _ in [] }
    state.register("echo") { arguments in [.string(try arguments.bytes(1))] }
    let loop = try state.load(
      """
      local f, n, argument = ...
      if f then
        for _ = 1, n do f(argument) end
      else
        for _ = 1, n do end
      end
      """, name: .named("benchmark"))
    let plain = try state.load("return function() end").call()[0]
    let count = LuaValue(iterations)

    func timePerIteration(_ arguments: LuaValue...) throws -> Double {
      _ = try loop.call(arguments: arguments)  // warm up
      var best = Double.infinity
      for _ in 0..<3 {
        let start = ContinuousClock.now
        _ = try loop.call(arguments: arguments)
        let elapsed = ContinuousClock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        best = min(best, nanoseconds / Double(iterations))
      }
      return best
    }

    let empty = try timePerIteration(.nil, count)
    let bridged = try timePerIteration(state[global: "nothing"], count)
    let echo = try timePerIteration(state[global: "echo"], count, .text("checkpoint-1"))
    let lua = try timePerIteration(plain, count)
    return LuaBridgeMeasurement(
      iterations: iterations, bridgedCall: bridged - empty, bridgedEchoCall: echo - empty,
      luaCall: lua - empty, loopIteration: empty)
  }
}
