import LuaHost
import XCTest

/// An identity as the engine will hand it to Lua: an id, not a pointer.
private struct VMHandle: Equatable {
  var id: String
  var memory: Int
}

/// A payload whose lifetime the test can observe.
private final class TrackedHandle {
  nonisolated(unsafe) static var alive = 0
  let id: Int
  init(id: Int) {
    self.id = id
    TrackedHandle.alive += 1
  }
  deinit { TrackedHandle.alive -= 1 }
}

final class LuaClassTests: XCTestCase {
  var state: LuaState!
  private var vmClass: LuaClass<VMHandle>!

  override func setUpWithError() throws {
    state = try LuaState()
    vmClass = state.defineClass("VM", payload: VMHandle.self)
    vmClass.property("id") { .text($0.id) }
    vmClass.property("memory") { .integer(Int64($0.memory)) }
    vmClass.method("resize") { vm, arguments in
      let megabytes = try arguments.int(1)
      return [.text("\(vm.id) -> \(megabytes) MB"), .integer(Int64(arguments.count))]
    }
    vmClass.toString { "VM(\($0.id))" }
    state.register("vm") { [vmClass] arguments in
      [vmClass!.wrap(VMHandle(id: try arguments.string(1), memory: try arguments.int(2, default: 512)))]
    }
  }

  override func tearDown() {
    vmClass = nil
    state.close()
    state = nil
  }

  private func errorMessage(_ code: String) -> String {
    do {
      try state.run(code)
      XCTFail("expected an error from \(code)")
      return ""
    } catch {
      return (error as? LuaError)?.message ?? "\(error)"
    }
  }

  func testPropertiesAreComputedInSwift() throws {
    XCTAssertEqual(try state.run("local v = vm('web-1', 2048); return v.id, v.memory"), ["web-1", 2048])
  }

  func testMethodsReceiveThePayloadAndArguments() throws {
    XCTAssertEqual(try state.run("return vm('web-1'):resize(4096)"), ["web-1 -> 4096 MB", 1])
  }

  func testMethodArgumentErrorsCountFromTheFirstArgumentAfterSelf() {
    XCTAssertTrue(
      errorMessage("vm('a'):resize('big')").hasSuffix("bad argument #1 to 'resize' (number expected, got string)"))
  }

  func testMethodCalledWithDotIsABadSelf() {
    XCTAssertTrue(
      errorMessage("local v = vm('a'); v.resize(10)").hasSuffix(
        "calling 'resize' on bad self (VM expected, got number)"))
    XCTAssertTrue(
      errorMessage("local v = vm('a'); v.resize()").hasSuffix(
        "calling 'resize' on bad self (VM expected, got no value)"))
  }

  func testToStringAndTypeName() throws {
    XCTAssertEqual(try state.run("return tostring(vm('db'))"), ["VM(db)"])
    XCTAssertEqual(try state.run("return type(vm('db')), getmetatable(vm('db'))"), ["userdata", "VM"])
  }

  func testEqualityComparesPayloads() throws {
    XCTAssertEqual(
      try state.run("return vm('a') == vm('a'), vm('a') == vm('b'), vm('a') ~= vm('b')"), [true, false, true])
    XCTAssertEqual(try state.run("local v = vm('a'); return v == v, v == 'a'"), [true, false])
  }

  func testCustomEqualityAndObjectsOfAnotherClassDiffer() throws {
    let disk = state.defineClass("Disk", payload: String.self)
    disk.equality { $0.lowercased() == $1.lowercased() }
    state.register("disk") { arguments in [disk.wrap(try arguments.string(1))] }
    XCTAssertEqual(try state.run("return disk('A') == disk('a'), disk('a') == vm('a')"), [true, false])
    XCTAssertEqual(try state.run("return tostring(disk('x'))"), ["Disk: x"])
  }

  func testUnknownFieldsAndAssignmentsAreErrors() {
    XCTAssertTrue(errorMessage("return vm('a').nmae").hasSuffix("VM has no field or method 'nmae'"))
    XCTAssertTrue(errorMessage("vm('a').memory = 5").hasSuffix("field 'memory' of VM is read-only"))
    XCTAssertTrue(errorMessage("vm('a').colour = 5").hasSuffix("cannot set 'colour' of VM: it has no such field"))
  }

  func testWritableProperty() throws {
    let settings = state.defineClass("Settings", payload: LuaTable.self)
    settings.property("mode", get: { $0["mode"] }, set: { table, value in table["mode"] = value })
    let backing = state.newTable()
    state[global: "settings"] = settings.wrap(backing)
    XCTAssertEqual(try state.run("settings.mode = 'fast'; return settings.mode"), ["fast"])
    XCTAssertEqual(backing["mode"], "fast")
  }

  func testObjectsAsArgumentsAndPayloadFromSwift() throws {
    state.register("memoryOf") { [vmClass] arguments in [.integer(Int64(try arguments.object(1, of: vmClass!).memory))]
    }
    XCTAssertEqual(try state.run("return memoryOf(vm('a', 99))"), [99])
    XCTAssertTrue(errorMessage("memoryOf({})").hasSuffix("bad argument #1 to 'memoryOf' (VM expected, got table)"))
    XCTAssertTrue(
      errorMessage("memoryOf(io.stdout)").hasSuffix("bad argument #1 to 'memoryOf' (VM expected, got FILE*)"))

    let value = try state.run("return vm('z', 7)")[0]
    XCTAssertEqual(vmClass.payload(of: value), VMHandle(id: "z", memory: 7))
    XCTAssertEqual(value.userdataValue?.payload(as: vmClass)?.id, "z")
    XCTAssertNil(vmClass.payload(of: "z"))
    XCTAssertNil(vmClass.payload(of: try state.run("return io.stdout")[0]))
  }

  func testWrappedFromSwiftIntoLua() throws {
    state[global: "current"] = vmClass.wrap(VMHandle(id: "from-swift", memory: 1))
    XCTAssertEqual(try state.run("return current.id, tostring(current)"), ["from-swift", "VM(from-swift)"])
  }

  func testPropertyErrorsBecomeLuaErrors() {
    let broken = state.defineClass("Broken", payload: Int.self)
    broken.property("value") { _ in throw LuaError(message: "checkpoint was merged away") }
    state[global: "broken"] = broken.wrap(1)
    XCTAssertEqual(errorMessage("return broken.value"), "(command line):1: checkpoint was merged away")
  }

  func testGarbageCollectionReleasesPayloads() throws {
    TrackedHandle.alive = 0
    let tracked = state.defineClass("Tracked", payload: TrackedHandle.self)
    tracked.property("id") { .integer(Int64($0.id)) }
    var next = 0
    state.register("make") { _ in
      next += 1
      return [tracked.wrap(TrackedHandle(id: next))]
    }
    XCTAssertEqual(try state.run("local sum = 0; for i = 1, 100 do sum = sum + make().id end; return sum"), [5050])
    XCTAssertEqual(try state.run("keep = make(); return keep.id"), [101])
    state.collectGarbage()
    state.collectGarbage()
    XCTAssertEqual(TrackedHandle.alive, 1, "only the object a global still holds survives")
    try state.run("keep = nil")
    state.collectGarbage()
    XCTAssertEqual(TrackedHandle.alive, 0)
  }

  func testClosingTheStateReleasesPayloads() throws {
    TrackedHandle.alive = 0
    let other = try LuaState()
    let tracked = other.defineClass("Tracked", payload: TrackedHandle.self)
    other[global: "a"] = tracked.wrap(TrackedHandle(id: 1))
    other[global: "b"] = tracked.wrap(TrackedHandle(id: 2))
    XCTAssertEqual(TrackedHandle.alive, 2)
    other.close()
    XCTAssertEqual(TrackedHandle.alive, 0)
  }
}
