import LuaHost
import XCTest

final class LuaListTests: XCTestCase {
  var state: LuaState!

  override func setUpWithError() throws {
    state = try LuaState()
    state.register("numbers") { arguments in
      [.table(arguments.state.makeList((0..<max(0, try arguments.int(1))).map { LuaValue($0 + 1) }))]
    }
  }

  override func tearDown() {
    state.close()
    state = nil
  }

  func testListsArePlainSequences() throws {
    let results = try state.run(
      """
      local list = numbers(5)
      local sum = 0
      for i, v in ipairs(list) do sum = sum + i * v end
      return #list, list[1], list[5], list[6], sum, type(list)
      """)
    XCTAssertEqual(results, [5, 1, 5, nil, 55, "table"])
  }

  func testWhereFiltersWithALuaFunction() throws {
    let results = try state.run(
      """
      local evens = numbers(10):where(function(n) return n % 2 == 0 end)
      local big = evens:where(function(n) return n > 5 end)
      return #evens, evens[1], evens[5], #big, big[1], big[2], getmetatable(big) == getmetatable(evens)
      """)
    XCTAssertEqual(results, [5, 2, 10, 3, 6, 8, true])
  }

  func testWhereOnEmptyAndNoMatch() throws {
    XCTAssertEqual(
      try state.run("return #numbers(0):where(print), #numbers(3):where(function() return false end)"), [0, 0])
  }

  func testWhereChecksItsArguments() {
    XCTAssertThrowsError(try state.run("numbers(3):where(5)")) { error in
      XCTAssertTrue(
        (error as! LuaError).message.hasSuffix("bad argument #1 to 'where' (function expected, got number)"), "\(error)"
      )
    }
    XCTAssertThrowsError(try state.run("local l = numbers(3); l.where(function() end)")) { error in
      XCTAssertTrue((error as! LuaError).message.contains("calling 'where' on bad self"), "\(error)")
    }
  }

  func testErrorsInThePredicatePropagate() throws {
    XCTAssertThrowsError(
      try state.run("numbers(3):where(function(n) if n == 2 then error('bad item') end return true end)")
    ) {
      error in
      XCTAssertTrue((error as! LuaError).message.hasSuffix("bad item"), "\(error)")
    }
    let caught = try state.run("return pcall(function() return numbers(3):where(function() error({code = 3}) end) end)")
    XCTAssertEqual(caught[0], false)
    XCTAssertEqual(caught[1].tableValue?["code"], 3)
  }

  func testCustomListTypeWithMethods() throws {
    let vms = state.listType(named: "VMList")
    vms.method("names") { list, arguments in
      let separator = try arguments.string(1, default: ",")
      let names = list.array().compactMap(\.stringValue)
      return [.text(names.joined(separator: separator))]
    }
    vms.method("first") { list, _ in [list[1]] }
    state[global: "vms"] = .table(vms.makeList(["web", "db", "cache"]))
    XCTAssertEqual(try state.run("return vms:names(' '), vms:first(), #vms"), ["web db cache", "web", 3])
    XCTAssertEqual(try state.run("return vms:where(function(n) return n ~= 'db' end):names()"), ["web,cache"])
    XCTAssertTrue(state.listType(named: "VMList") === vms, "list types are created once per name")
    XCTAssertThrowsError(try state.run("return numbers(2):names()"), "methods belong to their list type")
  }

  func testListFromSwiftSide() throws {
    let list = state.makeList(["a", "b"])
    XCTAssertEqual(list.array(), ["a", "b"])
    XCTAssertEqual(
      try state.load("local l = ...; return #l:where(function(x) return x == 'b' end)").call(.table(list)), [1])
  }
}
