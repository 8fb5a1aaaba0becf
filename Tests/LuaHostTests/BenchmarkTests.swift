import Foundation
import LuaHost
import XCTest

final class BenchmarkTests: XCTestCase {
  /// Only checks that the measurement runs and gives numbers; timings are for the benchmark script.
  /// LUAHOST_BENCHMARK_ITERATIONS=2000000 with `swift test -c release` gives meaningful numbers.
  func testMeasurementRuns() throws {
    let iterations = ProcessInfo.processInfo.environment["LUAHOST_BENCHMARK_ITERATIONS"].flatMap { Int($0) } ?? 20_000
    let measurement = try LuaBridgeBenchmark.measure(iterations: iterations)
    XCTAssertTrue(measurement.bridgedCall.isFinite)
    XCTAssertTrue(measurement.luaCall.isFinite)
    XCTAssertTrue(measurement.bridgedEchoCall.isFinite)
    XCTAssertGreaterThan(measurement.loopIteration, 0)
    XCTAssertTrue(measurement.description.contains("bridged call"))
    print("LuaBridgeBenchmark: \(measurement)")
  }
}
