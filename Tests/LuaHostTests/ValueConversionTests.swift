import LuaHost
import XCTest

final class ValueConversionTests: XCTestCase {
  var state: LuaState!

  override func setUpWithError() throws {
    state = try LuaState()
  }

  override func tearDown() {
    state.close()
    state = nil
  }

  /// Sends `value` through a Lua identity function and back.
  private func roundTrip(_ value: LuaValue) throws -> LuaValue {
    let identity = try state.load("return ...")
    let results = try identity.call(value)
    XCTAssertEqual(results.count, 1)
    return results[0]
  }

  func testScalarsRoundTrip() throws {
    XCTAssertEqual(try roundTrip(.nil), .nil)
    XCTAssertEqual(try roundTrip(true), .boolean(true))
    XCTAssertEqual(try roundTrip(false), .boolean(false))
    XCTAssertEqual(try roundTrip(42), .integer(42))
    XCTAssertEqual(try roundTrip(.integer(Int64.min)), .integer(Int64.min))
    XCTAssertEqual(try roundTrip(2.5), .number(2.5))
    XCTAssertEqual(try roundTrip("checkpoint"), .string(Array("checkpoint".utf8)))
    XCTAssertEqual(try roundTrip(.text("")), .string([]))
  }

  func testLuaSubtypesComeBackAsTheyAre() throws {
    let results = try state.run("return 3, 3.0, 2^53, 'x', 1 == 1.0, nil")
    guard case .integer(3) = results[0] else { return XCTFail("3 should be an integer: \(results[0])") }
    guard case .number(3.0) = results[1] else { return XCTFail("3.0 should be a float: \(results[1])") }
    XCTAssertEqual(results[2].doubleValue, 9_007_199_254_740_992)
    XCTAssertEqual(results[3].stringValue, "x")
    XCTAssertEqual(results[4], true)
    XCTAssertEqual(results[5], .nil)
    XCTAssertEqual(results.count, 6)
  }

  func testStringsAreBinary() throws {
    let bytes: [UInt8] = [0, 1, 0xFF, 0x80, 65, 0]
    let back = try roundTrip(.string(bytes))
    XCTAssertEqual(back.bytesValue, bytes)
    let length = try state.load("return #(...)").call(.string(bytes))
    XCTAssertEqual(length, [.integer(6)])
    XCTAssertEqual(try state.run("return 'a\\0b'")[0].bytesValue, [97, 0, 98])
  }

  func testUnicodeText() throws {
    let text = "Prüfpunkt ✓ 检查点"
    XCTAssertEqual(try roundTrip(.text(text)).stringValue, text)
    XCTAssertEqual(try state.load("return utf8.len(...)").call(.text(text)), [.integer(Int64(text.count))])
  }

  func testAccessors() {
    XCTAssertEqual(LuaValue.integer(7).intValue, 7)
    XCTAssertEqual(LuaValue.number(7.0).intValue, 7)
    XCTAssertNil(LuaValue.number(7.5).intValue)
    XCTAssertEqual(LuaValue.integer(7).doubleValue, 7.0)
    XCTAssertNil(LuaValue.text("7").intValue, "no coercion from strings")
    XCTAssertEqual(LuaValue.boolean(true).boolValue, true)
    XCTAssertNil(LuaValue.nil.boolValue)
    XCTAssertFalse(LuaValue.nil.isTruthy)
    XCTAssertFalse(LuaValue.boolean(false).isTruthy)
    XCTAssertTrue(LuaValue.integer(0).isTruthy, "0 is true in Lua")
    XCTAssertTrue(LuaValue.nil.isNil)
    XCTAssertEqual(LuaValue.text("a").typeName, "string")
    XCTAssertEqual(LuaValue.number(1).typeName, "number")
  }

  func testSwiftInitialisersAndLiterals() {
    XCTAssertEqual(LuaValue(5), .integer(5))
    XCTAssertEqual(LuaValue(Int64(5)), .integer(5))
    XCTAssertEqual(LuaValue(0.5), .number(0.5))
    XCTAssertEqual(LuaValue("s"), .text("s"))
    XCTAssertEqual(LuaValue(true), .boolean(true))
    XCTAssertEqual(LuaValue(bytes: [1, 2]), .string([1, 2]))
    XCTAssertEqual(LuaValue(Optional<Int>.none), .nil)
    XCTAssertEqual(LuaValue(Optional<Int>.some(3)), .integer(3))
    let literals: [LuaValue] = [nil, true, 1, 1.5, "x"]
    XCTAssertEqual(literals, [.nil, .boolean(true), .integer(1), .number(1.5), .text("x")])
  }

  func testEqualityAndHashingFollowLua() {
    XCTAssertEqual(LuaValue.integer(1), LuaValue.number(1.0))
    XCTAssertEqual(LuaValue.integer(1).hashValue, LuaValue.number(1.0).hashValue)
    XCTAssertNotEqual(LuaValue.integer(1), LuaValue.text("1"))
    XCTAssertNotEqual(LuaValue.number(.nan), LuaValue.number(.nan))
    let dictionary: [LuaValue: String] = [.integer(2): "two"]
    XCTAssertEqual(dictionary[.number(2.0)], "two")
  }

  func testConvertibleTypes() {
    XCTAssertEqual(Int.from(.integer(3)), 3)
    XCTAssertEqual(Int64.from(.number(4.0)), 4)
    XCTAssertEqual(Double.from(.integer(3)), 3.0)
    XCTAssertEqual(String.from(.text("a")), "a")
    XCTAssertEqual([UInt8].from(.string([9])), [9])
    XCTAssertEqual(Bool.from(.boolean(false)), false)
    XCTAssertNil(Bool.from(.nil))
    XCTAssertNil(String.from(.integer(1)))
    XCTAssertEqual(5.luaValue, .integer(5))
    XCTAssertEqual("t".luaValue, .text("t"))
    XCTAssertEqual(2.5.luaValue, .number(2.5))
  }

  func testTablesFromArraysAndDictionaries() throws {
    let list = state.newTable(array: [1, "two", 3.5])
    XCTAssertEqual(list.count, 3)
    XCTAssertEqual(list.array(), [1, "two", 3.5])
    let sum = try state.load("local t = ...; return #t, t[2], t[3]").call(.table(list))
    XCTAssertEqual(sum, [3, "two", 3.5])

    let record = state.newTable(fields: ["name": "web-1", "memory": 2048])
    XCTAssertEqual(try state.load("local t = ...; return t.name, t.memory").call(.table(record)), ["web-1", 2048])
    XCTAssertEqual(record.fields(), ["name": "web-1", "memory": 2048])

    let mixed = state.newTable([1: "a", "k": true, 2.5: "f", .nil: "dropped"])
    XCTAssertEqual(mixed.dictionary(), [1: "a", "k": true, 2.5: "f"])
  }

  func testTablesFromLua() throws {
    let table = try XCTUnwrap(state.run("return {10, 20, 30, name = 'lab', nested = {x = 1}}")[0].tableValue)
    XCTAssertEqual(table.array(), [10, 20, 30])
    XCTAssertEqual(table["name"], "lab")
    XCTAssertEqual(table[2], 20)
    XCTAssertEqual(table[.integer(3)], 30)
    XCTAssertEqual(table["nested"].tableValue?["x"], 1)
    XCTAssertEqual(table["missing"], .nil)
    XCTAssertEqual(table.dictionary().count, 5)

    table["name"] = "changed"
    table[4] = 40
    XCTAssertEqual(try state.load("local t = ...; return t.name, #t").call(.table(table)), ["changed", 4])
  }

  func testRawAccessIgnoresMetamethodsButGetAndSetHonourThem() throws {
    let table = try XCTUnwrap(
      state.run(
        """
        local log = {}
        return setmetatable({}, {
          __index = function(t, k) return 'computed ' .. k end,
          __newindex = function(t, k, v) rawset(t, k, 'set ' .. v) end,
        })
        """)[0].tableValue)
    XCTAssertEqual(table["x"], .nil)
    XCTAssertEqual(try table.get("x"), "computed x")
    try table.set("y", "v")
    XCTAssertEqual(table["y"], "set v")
    XCTAssertNotNil(table.metatable)
  }

  func testMetamethodErrorsInGetAreThrownNotRaised() throws {
    let table = try XCTUnwrap(
      state.run("return setmetatable({}, {__index = function() error('no such key') end})")[0].tableValue)
    XCTAssertThrowsError(try table.get("x")) { error in
      XCTAssertTrue((error as? LuaError)?.message.contains("no such key") == true, "\(error)")
    }
  }

  func testFunctionsUserdataAndThreadsAreReferences() throws {
    let results = try state.run("return print, io.stdout, coroutine.create(function() end), {}")
    XCTAssertNotNil(results[0].functionValue)
    XCTAssertNotNil(results[1].userdataValue)
    guard case .thread = results[2] else { return XCTFail("expected a thread, got \(results[2])") }
    XCTAssertEqual(results.map(\.typeName), ["function", "userdata", "thread", "table"])

    // Identity survives the round trip, and distinct objects differ.
    let back = try state.load("local a, b, c, d = ...; return a == print, b == io.stdout, c, d").call(
      arguments: results)
    XCTAssertEqual(back[0], true)
    XCTAssertEqual(back[1], true)
    XCTAssertEqual(back[2], results[2])
    XCTAssertEqual(back[3], results[3])
    XCTAssertNotEqual(results[3], .table(state.newTable()))
  }

  func testGlobals() throws {
    state[global: "answer"] = 42
    XCTAssertEqual(try state.run("return answer + 1"), [43])
    try state.run("greeting = 'hello'")
    XCTAssertEqual(state[global: "greeting"], "hello")
    XCTAssertEqual(state.globals["math"].tableValue?["pi"].doubleValue ?? 0, Double.pi, accuracy: 1e-12)
  }

  func testReferencesAreReleased() throws {
    state.collectGarbage()
    let before = state.memoryInUse
    for _ in 0..<2000 {
      _ = state.newTable(array: Array(repeating: 1, count: 100))
    }
    state.collectGarbage()
    XCTAssertLessThan(state.memoryInUse, before + 64 * 1024, "dropped references must unpin their tables")
  }
}
