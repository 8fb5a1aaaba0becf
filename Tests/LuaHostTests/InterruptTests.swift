import Foundation
import LuaHost
import XCTest

/// `LuaState.interrupt()` and Ctrl-C: running code stops at its next check with `.interrupted`.
final class InterruptTests: XCTestCase {
  /// A state handed to the thread that interrupts it (interrupt() is safe from any thread).
  private struct Target: @unchecked Sendable { let state: LuaState }

  private func interrupt(_ state: LuaState, after seconds: Double) {
    let target = Target(state: state)
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { target.state.interrupt() }
  }

  func testInterruptStopsALoopThatPcallCannotHoldBack() throws {
    let state = try LuaState()
    defer { state.close() }
    interrupt(state, after: 0.2)
    let started = Date()
    XCTAssertThrowsError(
      try state.run("while true do pcall(function() while true do end end) end", name: .named("spin"))
    ) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .interrupted, "\(error)")
      XCTAssertTrue(luaError.message.hasPrefix("spin:1: "), luaError.message)
      XCTAssertTrue(luaError.message.hasSuffix("interrupted"), luaError.message)
    }
    XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    // The request is spent: the state runs the next chunk normally.
    XCTAssertEqual(try state.run("local n = 0 for i = 1, 100000 do n = n + i end return n"), [5_000_050_000])
  }

  func testInterruptReachesCoroutinesAndKeepsTheBudget() throws {
    let state = try LuaState()
    defer { state.close() }
    state.instructionBudget = 1_000_000_000
    interrupt(state, after: 0.2)
    XCTAssertThrowsError(try state.run("coroutine.wrap(function() while true do end end)()")) { error in
      XCTAssertEqual((error as! LuaError).kind, .interrupted, "\(error)")
    }
    XCTAssertEqual(state.instructionBudget, 1_000_000_000, "the budget's hook stays")
    state.instructionBudget = 10_000
    XCTAssertThrowsError(try state.run("while true do end")) { error in
      XCTAssertEqual((error as! LuaError).kind, .instructionBudget, "\(error)")
    }
  }

  func testInterruptReachesACoroutineResumedInsideAnother() throws {
    let state = try LuaState()
    defer { state.close() }
    interrupt(state, after: 0.2)
    let spin = """
      local inner = coroutine.create(function() while true do end end)
      local outer = coroutine.create(function() return coroutine.resume(inner) end)
      while true do pcall(coroutine.resume, outer) end
      """
    XCTAssertThrowsError(try state.run(spin)) { error in
      XCTAssertEqual((error as! LuaError).kind, .interrupted, "\(error)")
    }
    // Coroutines still work as Lua's do afterwards: values both ways, errors, wrap's position.
    let results = try state.run(
      """
      local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
      local _, first = coroutine.resume(co, 1)
      local _, second = coroutine.resume(co, 20)
      local ok, message = coroutine.resume(co)
      local caught, wrapped = pcall(coroutine.wrap(function() error("inside") end))
      return first, second, ok, message, caught, wrapped
      """, name: .named("after"))
    XCTAssertEqual(results, [2, 40, false, "cannot resume dead coroutine", false, "after:5: inside"])
  }

  /// No hook slows plain Lua down: none is set while nothing asks for an interrupt or a budget
  /// (the interrupt watch used to keep a count hook installed for the whole run).
  func testNoHookRunsWithoutABudget() throws {
    let state = try LuaState()
    defer { state.close() }
    let hook = "local hook, mask, count = debug.gethook() return hook ~= nil, count or 0"
    XCTAssertEqual(try state.interruptingOnSIGINT { try state.run(hook) }, [false, 0])
    XCTAssertEqual(
      try state.interruptingOnSIGINT { try state.run("return coroutine.wrap(function() \(hook) end)()") }, [false, 0])
    state.instructionBudget = 50_000
    XCTAssertEqual(try state.interruptingOnSIGINT { try state.run(hook) }, [true, 1000], "the budget counts")
    // After an interrupt, the every-instruction hook it set goes away again.
    state.instructionBudget = nil
    interrupt(state, after: 0.1)
    XCTAssertThrowsError(try state.run("while true do end"))
    XCTAssertEqual(try state.run(hook), [false, 0])
  }

  func testSIGINTInterruptsOnlyInsideTheScope() throws {
    let state = try LuaState()
    defer { state.close() }
    XCTAssertThrowsError(
      try state.interruptingOnSIGINT {
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { _ = kill(getpid(), SIGINT) }
        try state.run("while true do end")
      }
    ) { error in
      XCTAssertEqual((error as! LuaError).kind, .interrupted, "\(error)")
    }
    // Outside the scope SIGINT has its earlier disposition again (ignored here, so the test lives).
    let previous = signal(SIGINT, SIG_IGN)
    defer { signal(SIGINT, previous) }
    try state.interruptingOnSIGINT { XCTAssertEqual(try state.run("return 1"), [1]) }
    XCTAssertTrue(signal(SIGINT, SIG_IGN).map { unsafeBitCast($0, to: Int.self) == 1 } ?? false, "SIG_IGN is back")
  }
}
