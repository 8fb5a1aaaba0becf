import Foundation
import LabKit

/// The few guest agent calls the driver needs (shutdown, freeze, thaw, set-time). To be folded
/// into the typed `GuestAgent` client (Sources/QEMUHost/Agent/) once that branch is merged.
struct AgentCalls {
  let socketPath: String

  /// Resynchronises (0xFF, then `guest-sync-delimited` with a random id) and runs one command.
  /// `expectsReply` is false for `guest-shutdown`, which answers nothing on success.
  @discardableResult
  func run(_ command: String, arguments: JSONValue? = nil, timeout: Double, expectsReply: Bool = true) throws
    -> JSONValue
  {
    let connection = try JSONLineConnection(path: socketPath, timeout: 2)
    defer { connection.close() }
    let deadline = Date().addingTimeInterval(timeout)
    let id = Int.random(in: 1..<(1 << 30))
    try connection.send(bytes: [0xFF])
    try connection.send(["execute": "guest-sync-delimited", "arguments": ["id": .number(Double(id))]])
    while true {
      let reply = try receive(connection, deadline: deadline, what: "guest-sync-delimited")
      if reply["return"]?.int == id { break }
    }
    var message: [String: JSONValue] = ["execute": .string(command)]
    if let arguments { message["arguments"] = arguments }
    try connection.send(.object(message))
    guard expectsReply else { return .null }
    let reply = try receive(connection, deadline: deadline, what: command)
    if let error = reply["error"] {
      throw LabKitError(.failed, "the guest agent refused \(command): \(error["desc"]?.string ?? "\(error)")")
    }
    return reply["return"] ?? .null
  }

  private func receive(_ connection: JSONLineConnection, deadline: Date, what: String) throws -> JSONValue {
    let remaining = deadline.timeIntervalSinceNow
    guard remaining > 0 else { throw LabKitError(.failed, "the guest agent did not answer \(what) in time") }
    do {
      return try connection.receive(timeout: remaining)
    } catch {
      throw LabKitError(.failed, "the guest agent did not answer \(what): \(error)")
    }
  }

  func ping(timeout: Double) throws { try run("guest-ping", timeout: timeout) }
  func shutdown() throws {
    try run("guest-shutdown", arguments: ["mode": "powerdown"], timeout: 10, expectsReply: false)
  }
  func freeze() throws { try run("guest-fsfreeze-freeze", timeout: 30) }
  func thaw() throws { try run("guest-fsfreeze-thaw", timeout: 30) }
  func setTime(timeout: Double = 10) throws {
    let nanoseconds = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
    try run("guest-set-time", arguments: ["time": .number(Double(nanoseconds))], timeout: timeout)
  }
}
