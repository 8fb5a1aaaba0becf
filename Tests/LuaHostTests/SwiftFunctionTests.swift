import LuaHost
import XCTest

private struct DiskFull: Error, CustomStringConvertible {
  var description: String { "disk full: 0 bytes left on /labs" }
}

/// Counts live instances, to see Lua's garbage collector release Swift closures and payloads.
final class LifeCounter {
  nonisolated(unsafe) static var alive = 0
  init() { LifeCounter.alive += 1 }
  deinit { LifeCounter.alive -= 1 }
}

final class SwiftFunctionTests: XCTestCase {
  var state: LuaState!

  override func setUpWithError() throws {
    state = try LuaState()
  }

  override func tearDown() {
    state.close()
    state = nil
  }

  private func errorMessage(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
      try state.run(code)
      XCTFail("expected an error", file: file, line: line)
      return ""
    } catch {
      return (error as? LuaError)?.message ?? "\(error)"
    }
  }

  func testRegisteredFunctionReceivesArgumentsAndReturnsResults() throws {
    state.register("describe") { arguments in
      [.text("\(arguments.count) arguments"), .integer(Int64(try arguments.int(1) * 2)), arguments[2], arguments[9]]
    }
    XCTAssertEqual(try state.run("return describe(21, 'x')"), ["2 arguments", 42, "x", nil])
  }

  func testRegisterInTable() throws {
    state.register("size", in: "vhd") { arguments in [.integer(Int64(try arguments.string(1).count))] }
    state.register("kind", in: "vhd") { _ in ["dynamic"] }
    XCTAssertEqual(try state.run("return vhd.size('abcd'), vhd.kind()"), [4, "dynamic"])
  }

  func testZeroAndManyResults() throws {
    state.register("none") { _ in [] }
    state.register("many") { _ in (1...30).map { LuaValue($0) } }
    XCTAssertEqual(try state.run("return select('#', none())"), [0])
    XCTAssertEqual(try state.run("return select('#', many()), select(30, many())"), [30, 30])
  }

  func testSwiftErrorBecomesLuaErrorWithPosition() {
    state.register("write") { _ in throw DiskFull() }
    let message = errorMessage("\n\nwrite()")
    XCTAssertEqual(message, "(command line):3: disk full: 0 bytes left on /labs")
  }

  func testSwiftErrorIsCatchableWithPcall() throws {
    state.register("write") { _ in throw DiskFull() }
    let results = try state.run("local ok, message = pcall(write, 1); return ok, message")
    XCTAssertEqual(results[0], false)
    XCTAssertEqual(results[1].stringValue?.hasSuffix("disk full: 0 bytes left on /labs"), true, "\(results[1])")
    // The state keeps working after the error went through the trampoline.
    XCTAssertEqual(try state.run("return 1"), [1])
  }

  func testSwiftErrorReportedToSwiftWithTraceback() {
    state.register("write") { _ in throw DiskFull() }
    XCTAssertThrowsError(try state.run("local function save() write() end\nsave()")) { error in
      let luaError = error as! LuaError
      XCTAssertEqual(luaError.kind, .runtime)
      XCTAssertTrue(luaError.message.hasSuffix("disk full: 0 bytes left on /labs"))
      XCTAssertTrue(luaError.traceback?.contains("save") == true, luaError.traceback ?? "")
    }
  }

  func testArgumentErrorsAreWordedLikeLua() {
    state.register("read") { arguments in
      _ = try arguments.int(1)
      _ = try arguments.string(2)
      _ = try arguments.table(3)
      _ = try arguments.function(4)
      return []
    }
    XCTAssertTrue(errorMessage("read('x')").hasSuffix("bad argument #1 to 'read' (number expected, got string)"))
    XCTAssertTrue(
      errorMessage("read(1.5)").hasSuffix("bad argument #1 to 'read' (number has no integer representation)"))
    XCTAssertTrue(errorMessage("read()").hasSuffix("bad argument #1 to 'read' (number expected, got no value)"))
    XCTAssertTrue(errorMessage("read(1, {})").hasSuffix("bad argument #2 to 'read' (string expected, got table)"))
    XCTAssertTrue(errorMessage("read(1, 'a', 5)").hasSuffix("bad argument #3 to 'read' (table expected, got number)"))
    XCTAssertTrue(
      errorMessage("read(1, 'a', {}, nil)").hasSuffix("bad argument #4 to 'read' (function expected, got nil)"))
    XCTAssertTrue(
      errorMessage("read(1, 'a', {}, io.stdout)").hasSuffix("bad argument #4 to 'read' (function expected, got FILE*)"))
    XCTAssertEqual(
      errorMessage("read('x')"), "(command line):1: bad argument #1 to 'read' (number expected, got string)")
  }

  func testArgumentConversionsFollowLua() throws {
    state.register("convert") { arguments in
      [
        .integer(Int64(try arguments.int(1))), .number(try arguments.double(2)), .text(try arguments.string(3)),
        .boolean(arguments.bool(4)), .string(try arguments.bytes(5)),
      ]
    }
    XCTAssertEqual(try state.run("return convert(3.0, '2.5', 7, 0, 'a\\0')"), [3, 2.5, "7", true, .string([97, 0])])
    XCTAssertEqual(try state.run("return convert('10', 1, 1.5, nil, 2)"), [10, 1, "1.5", false, "2"])
  }

  func testOptionalArguments() throws {
    state.register("optional") { arguments in
      [
        .integer(Int64(try arguments.int(1, default: 5))), .text(try arguments.string(2, default: "d")),
        .number(try arguments.double(3, default: 0.5)), .boolean(arguments.isNil(1)),
      ]
    }
    XCTAssertEqual(try state.run("return optional()"), [5, "d", 0.5, true])
    XCTAssertEqual(try state.run("return optional(1, 'x', 2)"), [1, "x", 2.0, false])
    XCTAssertTrue(
      errorMessage("optional('no')").hasSuffix("bad argument #1 to 'optional' (number expected, got string)"))
  }

  func testTypedValuesAndTypeNames() throws {
    state.register("typed") { arguments in
      [.text(arguments.typeName(1)), .text(arguments.typeName(5)), .boolean(try arguments.value(2, as: Bool.self))]
    }
    XCTAssertEqual(try state.run("return typed({}, true)"), ["table", "no value", true])
    XCTAssertTrue(errorMessage("typed({}, 1)").hasSuffix("bad argument #2 to 'typed' (boolean expected, got number)"))
  }

  func testReadingFieldsOfAnArgumentTable() throws {
    state.register("create") { arguments in
      let name = try arguments.field(1, "name", as: String.self)
      let memory = try arguments.field(1, "memory", as: Int.self, default: 1024)
      let raw = try arguments.field(1, "tags")
      return [.text(name), .integer(Int64(memory)), .integer(Int64(raw.tableValue?.count ?? -1))]
    }
    XCTAssertEqual(try state.run("return create{name = 'web', tags = {'a', 'b'}}"), ["web", 1024, 2])
    XCTAssertEqual(try state.run("return create{name = 'db', memory = 4096}"), ["db", 4096, -1])
    XCTAssertTrue(
      errorMessage("create{}").hasSuffix("bad argument #1 to 'create' (field 'name': string expected, got nil)"))
    XCTAssertTrue(
      errorMessage("create{name = 'x', memory = 'lots'}").hasSuffix(
        "bad argument #1 to 'create' (field 'memory': number expected, got string)"))
    XCTAssertTrue(errorMessage("create('web')").hasSuffix("bad argument #1 to 'create' (table expected, got string)"))
  }

  func testCustomArgumentError() {
    state.register("restore") { arguments in throw arguments.error(1, "checkpoint name must not be empty") }
    XCTAssertTrue(
      errorMessage("restore('')").hasSuffix("bad argument #1 to 'restore' (checkpoint name must not be empty)"))
  }

  func testCallbacksIntoLuaFromASwiftFunction() throws {
    state.register("twice") { arguments in
      let function = try arguments.function(1)
      let first = try function.call(1)
      let second = try function.call(arguments: first)
      return second
    }
    XCTAssertEqual(try state.run("return twice(function(x) return x * 10 end)"), [100])
  }

  func testLuaErrorFromCallbackPropagatesUnchanged() throws {
    state.register("apply") { arguments in try arguments.function(1).call() }
    let results = try state.run(
      """
      local ok, err = pcall(apply, function() error({code = 5}) end)
      local ok2, err2 = pcall(apply, function() error('inner failure') end)
      return ok, err.code, ok2, err2
      """)
    XCTAssertEqual(results, [false, 5, false, "(command line):2: inner failure"])
  }

  func testSwiftFunctionCalledFromCoroutine() throws {
    state.register("double") { arguments in [.integer(Int64(try arguments.int(1) * 2))] }
    state.register("callBack") { arguments in try arguments.function(1).call(7) }
    let results = try state.run(
      """
      local co = coroutine.wrap(function(a)
        local b = coroutine.yield(double(a))
        return callBack(function(x) return x + b end)
      end)
      return co(4), co(100)
      """)
    XCTAssertEqual(results, [8, 107])
  }

  func testFunctionValueCanBeCalledFromSwiftAndPassedToLua() throws {
    let square = state.function(named: "square") { arguments in
      let x = try arguments.double(1)
      return [.number(x * x)]
    }
    XCTAssertEqual(try square.call(3), [9.0])
    XCTAssertEqual(try state.load("local f = ...; return f(4)").call(.function(square)), [16.0])
  }

  func testCollectedFunctionsReleaseTheirClosures() throws {
    LifeCounter.alive = 0
    do {
      for _ in 0..<50 {
        let counter = LifeCounter()
        let function = state.function(named: "temporary") { _ in
          _ = counter
          return [true]
        }
        XCTAssertEqual(try function.call(), [true])
      }
    }
    XCTAssertEqual(LifeCounter.alive, 50, "Lua still holds the closures until collected")
    state.collectGarbage()
    state.collectGarbage()
    XCTAssertEqual(LifeCounter.alive, 0, "collected Lua functions must release their Swift closures")
  }

  func testClosingReleasesRegisteredClosures() throws {
    LifeCounter.alive = 0
    let other = try LuaState()
    do {
      let counter = LifeCounter()
      other.register("keep") { _ in
        _ = counter
        return []
      }
    }
    XCTAssertEqual(LifeCounter.alive, 1)
    other.close()
    XCTAssertEqual(LifeCounter.alive, 0, "closing the state releases every Swift closure it held")
  }
}
