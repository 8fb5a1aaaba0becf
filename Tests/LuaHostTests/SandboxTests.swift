import Foundation
import LuaHost
import XCTest

final class SandboxTests: XCTestCase {
  private func sandbox(budget: Int? = 1_000_000, memory: Int? = 8 << 20) throws -> LuaState {
    let state = try LuaState(sandbox: LuaSandbox(instructionBudget: budget, memoryLimit: memory))
    addTeardownBlock { state.close() }
    return state
  }

  func testDangerousLibrariesAreAbsent() throws {
    let state = try sandbox()
    let results = try state.run(
      "return type(io), type(os), type(debug), type(package.loadlib), package.cpath, type(require), type(string.rep)")
    XCTAssertEqual(results, [.text("nil"), "nil", "nil", "nil", "", "function", "function"])
  }

  func testBinaryChunksAreRefusedEverywhere() throws {
    let state = try sandbox()
    let results = try state.run(
      """
      local binary = string.dump(function() return 1 end)
      local f, loadError = load(binary, 'dump', 'b')
      local g, textOk = load('return 2', 'text', 'bt')
      return f, loadError, g()
      """)
    XCTAssertEqual(results[0], .nil)
    XCTAssertTrue(
      results[1].stringValue?.contains("attempt to load a binary chunk (mode is 't')") == true, "\(results[1])")
    XCTAssertEqual(results[2], 2)
  }

  func testLoadKeepsItsEnvironmentArgument() throws {
    let state = try sandbox()
    XCTAssertEqual(try state.run("return load('return x', 'c', 't', {x = 5})()"), [5])
    XCTAssertEqual(try state.run("x = 6; return load('return x')()"), [6])
    // An explicit nil environment stays nil (load tells nil from an absent argument).
    XCTAssertEqual(try state.run("return (pcall(load('return print', 'c', 't', nil)))"), [false])
  }

  func testFilesLoadAsTextOnly() throws {
    let state = try sandbox()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let text = directory.appendingPathComponent("labmodule.lua")
    try "return {answer = 42}".write(to: text, atomically: true, encoding: .utf8)
    let binary = directory.appendingPathComponent("binary.lua")
    let full = try LuaState()
    defer { full.close() }
    let dumped = try XCTUnwrap(full.run("return string.dump(function() return 'compiled' end)")[0].bytesValue)
    try Data(dumped).write(to: binary)

    state[global: "dir"] = .text(directory.path)
    let results = try state.run(
      """
      package.path = dir .. '/?.lua'
      local module = require('labmodule')
      local fromDofile = dofile(dir .. '/labmodule.lua')
      local f, loadfileError = loadfile(dir .. '/binary.lua')
      local ok, dofileError = pcall(dofile, dir .. '/binary.lua')
      local ok2, requireError = pcall(require, 'binary')
      return module.answer, fromDofile.answer, f, loadfileError, ok, dofileError, ok2, requireError
      """)
    XCTAssertEqual(results[0], 42)
    XCTAssertEqual(results[1], 42)
    XCTAssertEqual(results[2], .nil)
    XCTAssertTrue(results[3].stringValue?.contains("binary chunk") == true, "\(results[3])")
    XCTAssertEqual(results[4], false)
    XCTAssertTrue(results[5].stringValue?.contains("binary chunk") == true, "\(results[5])")
    XCTAssertEqual(results[6], false)
    XCTAssertTrue(results[7].stringValue?.contains("binary chunk") == true, "\(results[7])")
  }

  func testRequireOfAMissingModuleListsTheFilesTried() throws {
    let state = try sandbox()
    XCTAssertThrowsError(try state.run("package.path = '/nonexistent/?.lua'; require('socket.core')")) { error in
      let message = (error as! LuaError).message
      XCTAssertTrue(message.contains("module 'socket.core' not found"), message)
      XCTAssertTrue(message.contains("/nonexistent/socket/core.lua"), message)
      XCTAssertFalse(message.contains(".so"), "no C searcher: \(message)")
    }
  }

  func testInfiniteLoopIsStopped() throws {
    let state = try sandbox(budget: 100_000)
    XCTAssertThrowsError(try state.run("local n = 0\nwhile true do n = n + 1 end", name: .named("loop"))) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .instructionBudget)
      XCTAssertTrue(luaError.message.hasPrefix("loop:2: "), luaError.message)
      XCTAssertTrue(luaError.message.hasSuffix("instruction budget of 100000 exceeded"), luaError.message)
    }
    // The budget is per outermost call: the next run starts afresh.
    XCTAssertEqual(try state.run("local n = 0 for i = 1, 1000 do n = n + i end return n"), [500_500])
  }

  func testPcallCannotEscapeTheBudget() throws {
    let state = try sandbox(budget: 100_000)
    XCTAssertThrowsError(try state.run("while true do pcall(function() while true do end end) end")) { error in
      XCTAssertEqual((error as! LuaError).kind, .instructionBudget, "\(error)")
    }
  }

  func testBudgetAppliesInsideCoroutinesAndCallbacks() throws {
    let state = try sandbox(budget: 50_000)
    XCTAssertThrowsError(try state.run("coroutine.wrap(function() while true do end end)()")) { error in
      XCTAssertEqual((error as! LuaError).kind, .instructionBudget, "\(error)")
    }
    state.register("each") { arguments in
      let function = try arguments.function(1)
      for _ in 0..<1_000_000 { try function.call() }
      return []
    }
    XCTAssertThrowsError(try state.run("each(function() for i = 1, 10 do end end)")) { error in
      XCTAssertEqual((error as! LuaError).kind, .instructionBudget, "\(error)")
    }
  }

  func testHugeStringAllocationIsStopped() throws {
    let state = try sandbox(memory: 4 << 20)
    XCTAssertThrowsError(try state.run("local s = string.rep('x', 1 << 30)")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .memoryLimit, "\(error)")
      XCTAssertEqual(luaError.message, "memory limit of \(4 << 20) bytes exceeded")
    }
    XCTAssertLessThan(state.memoryInUse, 4 << 20)
    XCTAssertEqual(try state.run("return #string.rep('x', 1000)"), [1000], "the state survives")
  }

  func testGrowingTableIsStopped() throws {
    let state = try sandbox(budget: nil, memory: 2 << 20)
    XCTAssertThrowsError(try state.run("local t = {} for i = 1, 1e9 do t[i] = {i} end")) { error in
      XCTAssertEqual((error as! LuaError).kind, .memoryLimit, "\(error)")
    }
    let caught = try state.run("local t = {} return pcall(function() for i = 1, 1e9 do t[i] = i end end)")
    XCTAssertEqual(caught[0], false)
    XCTAssertEqual(caught[1], "not enough memory", "Lua code sees Lua's own memory error")
  }

  func testSwiftAllocationPastTheLimitFailsAfterTheSwiftFrame() throws {
    let state = try sandbox(budget: nil, memory: 2 << 20)
    state.register("bigString") { _ in [.string(Array(repeating: 0x41, count: 4 << 20))] }
    XCTAssertThrowsError(try state.run("local s = bigString() return #s")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .memoryLimit, "\(error)")
      XCTAssertTrue(luaError.message.contains("memory limit of \(2 << 20) bytes exceeded"), luaError.message)
    }
    XCTAssertEqual(try state.run("return 1"), [1])
  }

  func testLimitsCanBeChanged() throws {
    let state = try sandbox(budget: nil, memory: nil)
    XCTAssertNil(state.instructionBudget)
    XCTAssertNil(state.memoryLimit)
    state.instructionBudget = 10_000
    XCTAssertEqual(state.instructionBudget, 10_000)
    XCTAssertThrowsError(try state.run("while true do end"))
    state.instructionBudget = nil
    XCTAssertEqual(try state.run("local n = 0 for i = 1, 100000 do n = n + 1 end return n"), [100_000])
  }

  func testFullStateCanAlsoHaveLimits() throws {
    let state = try LuaState()
    defer { state.close() }
    state.memoryLimit = 16 << 20
    XCTAssertThrowsError(try state.run("local s = string.rep('x', 64 << 20)")) { error in
      XCTAssertEqual((error as! LuaError).kind, .memoryLimit)
    }
  }
}
