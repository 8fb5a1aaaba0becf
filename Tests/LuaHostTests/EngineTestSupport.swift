import Foundation
import LabKit
import LuaHost
import XCTest

/// A Lua state with the `vmlab` module over a library in a temporary folder, removed afterwards.
class EngineTestCase: XCTestCase {
  var folder: String!
  var state: LuaState!
  /// The library, once a script made the module open it.
  var library: Library?
  /// How many times the module asked for the library.
  var libraryOpens = 0

  override func setUpWithError() throws {
    folder = NSTemporaryDirectory() + "vmlab-engine-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    state = try LuaState()
    let path = folder + "/library"
    VMLabModule.install(in: state) { [unowned self] in
      self.libraryOpens += 1
      let library = try Library(at: path, hosts: HostRegistry(["simulated": SimulatedHost()]))
      self.library = library
      return library
    }
    state[global: "folder"] = .text(folder)
  }

  override func tearDownWithError() throws {
    if let library, let jobs = try? library.jobs() {
      for job in jobs where !job.status.isFinished { _ = try? library.wait(job: job.id) }
    }
    state.close()
    state = nil
    try library?.close()
    library = nil
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// Runs a chunk and returns its results.
  @discardableResult
  func lua(_ code: String, file: StaticString = #filePath, line: UInt = #line) throws -> [LuaValue] {
    do {
      return try state.run(code, name: .named("test"))
    } catch {
      XCTFail("Lua failed: \(error)", file: file, line: line)
      throw error
    }
  }

  /// The first result of a chunk, as text (tostring for objects).
  func text(_ code: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let results = try lua(code, file: file, line: line)
    return results.first?.stringValue ?? "\(results.first ?? .nil)"
  }

  /// The message of the error a chunk raises (the test fails when it raises none).
  func errorMessage(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
      try state.run(code, name: .named("test"))
      XCTFail("expected an error from: \(code)", file: file, line: line)
      return ""
    } catch {
      return (error as? LuaError)?.message ?? "\(error)"
    }
  }

  func assertError(
    _ code: String, contains expected: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    let message = errorMessage(code, file: file, line: line)
    XCTAssertTrue(message.contains(expected), "\(message)\n  does not contain: \(expected)", file: file, line: line)
  }

  /// A web01 VM (two disks, guest additions) and db01 (one disk, none), both running.
  func makeTwoRunningVMs() throws {
    try lua(
      """
      web = vmlab.vm.create{name="web01", disks={"16M", "4M"}, additions=true}
      db = vmlab.vm.create{name="db01", disks={"16M"}}
      web:start(); db:start()
      """)
  }
}
