import LuaHost
import XCTest

final class BenchmarkTests: XCTestCase {
  /// Only checks that the measurement runs and gives numbers; timings are for the benchmark script.
  func testMeasurementRuns() throws {
    let measurement = try LuaBridgeBenchmark.measure(iterations: 20_000)
    XCTAssertTrue(measurement.bridgedCall.isFinite)
    XCTAssertTrue(measurement.luaCall.isFinite)
    XCTAssertTrue(measurement.bridgedEchoCall.isFinite)
    XCTAssertGreaterThan(measurement.loopIteration, 0)
    XCTAssertTrue(measurement.description.contains("bridged call"))
  }
}
