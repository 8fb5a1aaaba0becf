import Foundation
import LuaHost
import XCTest

final class RunningTests: XCTestCase {
  var state: LuaState!

  override func setUpWithError() throws {
    state = try LuaState()
  }

  override func tearDown() {
    state.close()
    state = nil
  }

  /// Short paths: Lua abbreviates chunk names longer than LUA_IDSIZE with "...".
  private func temporaryFile(_ contents: String, name: String = "script.lua") throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lh-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let path = directory.appendingPathComponent(name).path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
    return path
  }

  func testRunReturnsResults() throws {
    XCTAssertEqual(try state.run("return 1 + 1, 'two'"), [2, "two"])
    XCTAssertEqual(try state.run("local x = 1"), [])
  }

  func testStandardLibrariesAreOpen() throws {
    XCTAssertEqual(
      try state.run("return type(io), type(os), type(string.format), type(debug)"),
      ["table", "table", "function", "table"])
  }

  func testSyntaxErrorKeepsChunkNameAndLine() {
    XCTAssertThrowsError(try state.run("local x = 1\nlocal = 2")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .syntax)
      XCTAssertTrue(luaError.message.hasPrefix("(command line):2:"), luaError.message)
      XCTAssertNil(luaError.traceback)
    }
    XCTAssertThrowsError(try state.load("x = = 1", name: .named("lab.lua"))) { error in
      XCTAssertTrue((error as! LuaError).message.hasPrefix("lab.lua:1:"), "\(error)")
    }
  }

  func testSyntaxErrorInFileNamesThePath() throws {
    let path = try temporaryFile("local ok = true\n\nreturn +\n")
    XCTAssertThrowsError(try state.run(file: path)) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .syntax)
      XCTAssertTrue(
        luaError.message.hasPrefix("\(path):4:") || luaError.message.hasPrefix("\(path):3:"), luaError.message)
    }
  }

  func testRunFileWithArguments() throws {
    let path = try temporaryFile("local a, b = ...\nreturn a * b, debug.getinfo(1, 'S').source")
    XCTAssertEqual(try state.run(file: path, arguments: [6, 7]), [42, .text("@" + path)])
  }

  func testMissingFileIsAFileError() {
    XCTAssertThrowsError(try state.run(file: "/nonexistent/lab.lua")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .file)
      XCTAssertTrue(luaError.message.contains("/nonexistent/lab.lua"), luaError.message)
    }
  }

  func testRuntimeErrorHasMessageAndTraceback() {
    let code = """
      local function inner() error('disk is gone') end
      local function outer() inner() end
      outer()
      """
    XCTAssertThrowsError(try state.run(code, name: .named("lab"))) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .runtime)
      XCTAssertEqual(luaError.message, "lab:1: disk is gone")
      let traceback = luaError.traceback ?? ""
      XCTAssertTrue(traceback.hasPrefix("stack traceback:"), traceback)
      XCTAssertTrue(traceback.contains("inner"), traceback)
      XCTAssertTrue(traceback.contains("outer"), traceback)
      XCTAssertTrue(luaError.description.contains("stack traceback:"))
    }
  }

  func testNonStringErrorValuesArePreserved() throws {
    XCTAssertThrowsError(try state.run("error({code = 7})")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.value?.tableValue?["code"], 7)
      XCTAssertEqual(luaError.message, "(error object is a table value)")
    }
    XCTAssertThrowsError(try state.run("error(setmetatable({}, {__tostring = function() return 'custom' end}))")) {
      error in
      XCTAssertEqual((error as! LuaError).message, "custom")
    }
    XCTAssertThrowsError(try state.run("error(42)")) { error in
      XCTAssertEqual((error as! LuaError).message, "42")
      XCTAssertEqual((error as! LuaError).value, 42)
    }
  }

  func testStateStaysUsableAfterErrors() throws {
    for _ in 0..<3 {
      XCTAssertThrowsError(try state.run("error('x')"))
      XCTAssertThrowsError(try state.run("+"))
    }
    XCTAssertEqual(try state.run("return 5"), [5])
  }

  func testCallingLuaFunctionsFromSwift() throws {
    let add = try XCTUnwrap(state.run("return function(a, b) return a + b, a - b end")[0].functionValue)
    XCTAssertEqual(try add.call(5, 3), [8, 2])
    XCTAssertEqual(try add.call(arguments: [1.5, 1]), [2.5, 0.5])
    XCTAssertThrowsError(try add.call("a", 1)) { error in
      XCTAssertTrue((error as! LuaError).message.contains("attempt to"), "\(error)")
    }
  }

  func testBinaryChunksRefusedByDefault() throws {
    let dumped = try XCTUnwrap(state.run("return string.dump(function() return 1 end)")[0].bytesValue)
    XCTAssertThrowsError(try state.load(bytes: dumped, name: .named("dump"))) { error in
      XCTAssertTrue((error as! LuaError).message.contains("binary chunk"), "\(error)")
    }
    XCTAssertEqual(try state.load(bytes: dumped, name: .named("dump"), mode: .binary).call(), [1])
  }

  func testChunkNames() {
    XCTAssertEqual(LuaChunkName.file("/labs/a.lua").rawValue, "@/labs/a.lua")
    XCTAssertEqual(LuaChunkName.commandLine.rawValue, "=(command line)")
    XCTAssertEqual(LuaChunkName.named("repl").rawValue, "=repl")
  }

  func testClosedStateRefusesWork() throws {
    let table = state.newTable(array: [1])
    state.close()
    XCTAssertFalse(state.isOpen)
    XCTAssertThrowsError(try state.run("return 1"))
    XCTAssertEqual(table[1], .nil, "references are inert after close")
  }
}
