import Foundation
import LabKit

/// A connection to a running VM's supervisor: one JSON request a line, one reply each, `ok` false
/// with an `error` when the supervisor could not do it. Connecting fails when no supervisor runs.
struct SupervisorControl {
  let connection: JSONLineConnection
  let vmFolder: String

  init(runtime: QEMURuntimeFolder, timeout: Double = 0.2) throws {
    connection = try JSONLineConnection(path: runtime.controlSocket, timeout: timeout)
    vmFolder = runtime.vmFolder
  }

  @discardableResult
  func request(_ request: JSONValue, timeout: Double) throws -> JSONValue {
    try connection.send(request)
    let reply = try connection.receive(timeout: timeout)
    guard reply["ok"]?.bool == true else {
      throw LabKitError(.failed, reply["error"]?.string ?? "the supervisor of \(vmFolder) answered \(reply)")
    }
    return reply
  }
}
