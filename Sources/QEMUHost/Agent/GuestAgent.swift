import Foundation
import LabKit

/// A client of the qemu guest agent (`qemu-ga` in the guest, on the virtio-serial port
/// `org.qemu.guest_agent.0`, which qemu exposes as a UNIX socket on the host).
///
/// The port is a byte stream that outlives connections: replies meant for an earlier client (or a
/// command that timed out) may still be in it. So before the first command, and after any
/// timeout, the client resynchronises: it sends 0xFF (the agent resets its parser on it) and
/// `guest-sync-delimited` with a random id, then drops everything until the reply carrying that
/// id. Every wait has a deadline, since the guest may be hung, booting or without an agent.
public final class GuestAgent: @unchecked Sendable {
  /// The file name qemu's `-chardev socket` for the agent has in a VM's runtime folder.
  public static let socketName = "agent.sock"

  public let socketPath: String
  private var connection: JSONLineConnection?
  private var synchronised = false
  private let lock = NSLock()

  public init(socketPath: String) {
    self.socketPath = socketPath
  }

  deinit { connection?.close() }

  public func close() {
    lock.lock()
    defer { lock.unlock() }
    drop()
  }

  /// Answers within `timeout` seconds, or throws saying that no agent answered.
  public func ping(timeout: Double = 5) throws {
    _ = try call("guest-ping", timeout: timeout)
  }

  /// Waits until the agent answers (a guest that is booting), trying again until `timeout`
  /// seconds passed; returns how long it took.
  @discardableResult
  public func waitReady(timeout: Double) throws -> Double {
    let started = Date()
    let deadline = started.addingTimeInterval(timeout)
    var lastError: Error?
    while Date() < deadline {
      do {
        try ping(timeout: min(2, max(0.05, deadline.timeIntervalSinceNow)))
        return Date().timeIntervalSince(started)
      } catch {
        lastError = error
        // A socket that does not exist yet fails at once: do not spin on it.
        let pause = min(0.2, max(0, deadline.timeIntervalSinceNow))
        if pause > 0 { Thread.sleep(forTimeInterval: pause) }
      }
    }
    throw LabKitError(
      .failed,
      "the guest agent at \(socketPath) did not answer within \(JSONLineConnection.seconds(timeout))"
        + (lastError.map { " (last: \($0))" } ?? "")
        + "; is the guest still booting, and does it run qemu-guest-agent on org.qemu.guest_agent.0?")
  }

  /// Runs `path` with `arguments` in the guest (found on the guest's PATH when it has no slash),
  /// feeding it `input`, and waits up to `timeout` seconds for it to end.
  public func exec(path: String, arguments: [String] = [], input: Data? = nil, timeout: Double = 60) throws
    -> GuestExecResult
  {
    let deadline = Date().addingTimeInterval(timeout)
    var request: [String: JSONValue] = [
      "path": .string(path), "arg": .array(arguments.map(JSONValue.string)), "capture-output": true,
    ]
    if let input { request["input-data"] = .string(input.base64EncodedString()) }
    let started: JSONValue
    do {
      started = try call("guest-exec", arguments: .object(request), timeout: max(0.05, deadline.timeIntervalSinceNow))
    } catch let error as LabKitError where error.message.hasPrefix("the guest agent refused") {
      // A program that does not exist, or is not executable: the agent cannot start it.
      throw LabKitError(.failed, "cannot run \(path) in the guest: \(error.message)")
    }
    guard let pid = started["pid"]?.int else {
      throw LabKitError(.failed, "the guest agent at \(socketPath) started \(path) but gave no process id")
    }
    var pause = 0.01
    while true {
      let remaining = deadline.timeIntervalSinceNow
      guard remaining > 0 else { break }
      let status = try call("guest-exec-status", arguments: ["pid": .number(Double(pid))], timeout: min(5, remaining))
      if status["exited"]?.bool == true {
        return try Self.result(of: status)
      }
      Thread.sleep(forTimeInterval: min(pause, max(0, deadline.timeIntervalSinceNow)))
      pause = min(pause * 2, 0.2)
    }
    // The agent has no command to end a process; busybox's kill in the guest does it, if there is one.
    let killed =
      (try? call(
        "guest-exec", arguments: ["path": "kill", "arg": ["-KILL", .string(String(pid))]], timeout: 2)) != nil
    throw LabKitError(
      .failed,
      "\(path) in the guest did not finish within \(JSONLineConnection.seconds(timeout)) (guest process \(pid)"
        + (killed ? ", now sent SIGKILL)" : "; it may still run)"))
  }

  /// Asks the guest to shut down. The agent does not answer a shutdown that works (the guest is
  /// going away), so only an error answer within a second counts as a failure.
  public func shutdown(mode: GuestShutdownMode = .powerdown) throws {
    lock.lock()
    defer { lock.unlock() }
    let connection = try synchronisedConnection(timeout: 5)
    try send(["execute": "guest-shutdown", "arguments": ["mode": .string(mode.rawValue)]], on: connection)
    do {
      let reply = try connection.receive(timeout: 1)
      if let error = reply["error"] {
        throw LabKitError(.failed, "the guest refused to shut down: \(Self.describe(error))")
      }
    } catch let error as LabKitError where error.kind == .failed && !error.message.hasPrefix("the guest refused") {
      // Silence, or the connection closing as the guest goes: the shutdown is under way.
    }
    drop()
  }

  /// Sets the guest's clock to `date` (and its hardware clock from it); nil reads the time from
  /// the guest's hardware clock instead (what qemu restored with the VM's memory).
  public func setTime(_ date: Date? = Date(), timeout: Double = 10) throws {
    if let date {
      let nanoseconds = (date.timeIntervalSince1970 * 1_000_000_000).rounded()
      _ = try call("guest-set-time", arguments: ["time": .number(nanoseconds)], timeout: timeout)
    } else {
      _ = try call("guest-set-time", timeout: timeout)
    }
  }

  /// The guest's clock.
  public func time(timeout: Double = 5) throws -> Date {
    guard case .number(let nanoseconds) = try call("guest-get-time", timeout: timeout) else {
      throw LabKitError(.failed, "the guest agent at \(socketPath) gave no time")
    }
    return Date(timeIntervalSince1970: nanoseconds / 1_000_000_000)
  }

  /// Freezes the guest's file systems (writes wait, and what is written is on the disks);
  /// returns how many were frozen.
  public func freeze(timeout: Double = 30) throws -> Int {
    try count(call("guest-fsfreeze-freeze", timeout: timeout), of: "guest-fsfreeze-freeze")
  }

  /// Thaws the file systems `freeze` froze; returns how many were thawed.
  @discardableResult
  public func thaw(timeout: Double = 30) throws -> Int {
    try count(call("guest-fsfreeze-thaw", timeout: timeout), of: "guest-fsfreeze-thaw")
  }

  /// `frozen` or `thawed`.
  public func freezeStatus(timeout: Double = 5) throws -> String {
    try call("guest-fsfreeze-status", timeout: timeout).string ?? "unknown"
  }

  // MARK: - The protocol

  /// Sends one command and returns its `return` member; an `error` answer is thrown.
  func call(_ command: String, arguments: JSONValue? = nil, timeout: Double) throws -> JSONValue {
    lock.lock()
    defer { lock.unlock() }
    let deadline = Date().addingTimeInterval(timeout)
    let connection = try synchronisedConnection(timeout: timeout)
    var message: [String: JSONValue] = ["execute": .string(command)]
    if let arguments { message["arguments"] = arguments }
    try send(.object(message), on: connection)
    let reply: JSONValue
    do {
      reply = try connection.receive(timeout: max(0.01, deadline.timeIntervalSinceNow))
    } catch {
      drop()
      throw LabKitError(
        .failed,
        "the guest agent at \(socketPath) did not answer \(command) within \(JSONLineConnection.seconds(timeout)); is qemu-guest-agent running in the guest?"
      )
    }
    if let error = reply["error"] {
      throw LabKitError(.failed, "the guest agent refused \(command): \(Self.describe(error))")
    }
    guard let result = reply["return"] else {
      drop()
      throw LabKitError(.failed, "the guest agent at \(socketPath) answered \(command) without a result")
    }
    return result
  }

  private func send(_ message: JSONValue, on connection: JSONLineConnection) throws {
    do {
      try connection.send(message)
    } catch {
      drop()
      throw error
    }
  }

  /// The connection, connected and resynchronised within `timeout` seconds.
  private func synchronisedConnection(timeout: Double) throws -> JSONLineConnection {
    let deadline = Date().addingTimeInterval(timeout)
    let connection: JSONLineConnection
    if let existing = self.connection {
      connection = existing
    } else {
      do {
        connection = try JSONLineConnection(path: socketPath, timeout: timeout)
      } catch {
        throw LabKitError(
          .failed,
          "no guest agent socket to talk to at \(socketPath) (\(error)); is the VM running with its agent channel?")
      }
      self.connection = connection
      synchronised = false
    }
    if synchronised { return connection }
    let id = Int.random(in: 1...Int(Int32.max))
    do {
      try connection.send(bytes: [0xFF])
      try connection.send(["execute": "guest-sync-delimited", "arguments": ["id": .number(Double(id))]])
      while true {
        // The agent answers the lone 0xFF with a parse error, and stale replies may come first.
        let reply = try connection.receive(timeout: max(0.01, deadline.timeIntervalSinceNow))
        if reply["return"]?.int == id { break }
      }
    } catch {
      drop()
      throw LabKitError(
        .failed,
        "the guest agent at \(socketPath) did not answer within \(JSONLineConnection.seconds(timeout)); is qemu-guest-agent running in the guest?"
      )
    }
    synchronised = true
    return connection
  }

  private func drop() {
    connection?.close()
    connection = nil
    synchronised = false
  }

  private func count(_ value: JSONValue, of command: String) throws -> Int {
    guard let count = value.int else {
      throw LabKitError(.failed, "the guest agent answered \(command) with no count")
    }
    return count
  }

  static func describe(_ error: JSONValue) -> String {
    let text = error["desc"]?.string ?? "\(error)"
    return error["class"]?.string.map { "\(text) (\($0))" } ?? text
  }

  static func result(of status: JSONValue) throws -> GuestExecResult {
    func bytes(_ key: String) throws -> Data {
      guard let text = status[key]?.string else { return Data() }
      guard let data = Data(base64Encoded: text) else {
        throw LabKitError(.failed, "the guest agent sent \(key) that is not base64")
      }
      return data
    }
    let signal = status["signal"]?.int.map(Int32.init)
    let code = status["exitcode"]?.int.map(Int32.init) ?? signal.map { 128 + $0 } ?? -1
    return GuestExecResult(
      stdout: try bytes("out-data"), stderr: try bytes("err-data"), status: code, signal: signal,
      truncated: status["out-truncated"]?.bool == true || status["err-truncated"]?.bool == true)
  }
}
