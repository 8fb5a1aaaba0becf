import Foundation
import LabKit

/// A client of qemu's monitor protocol (QMP, qemu `docs/interop/qmp-spec`) on a UNIX socket: the
/// greeting and `qmp_capabilities` on connect, then one command at a time. Events qemu sends
/// between replies (STOP, RESUME, SHUTDOWN, MIGRATION, …) are kept aside in `events`.
public final class QMPClient: @unchecked Sendable {
  private let connection: JSONLineConnection
  private let lock = NSLock()
  private var nextID = 1
  /// The events received so far, oldest first.
  public private(set) var events: [QMPEvent] = []

  /// Connects (waiting up to `timeout` for qemu to listen), reads the greeting and leaves
  /// capabilities negotiation mode.
  public init(socketPath: String, timeout: Double = 10) throws {
    connection = try JSONLineConnection(path: socketPath, timeout: timeout)
    let greeting = try connection.receive(timeout: timeout)
    guard greeting["QMP"] != nil else {
      throw LabKitError(.failed, "\(socketPath) is not a QMP monitor: it greeted with \(Self.text(greeting))")
    }
    _ = try execute("qmp_capabilities", timeout: timeout)
  }

  public func close() { connection.close() }

  /// Runs one command and returns its `return` member; qemu's error is thrown with its `desc`.
  @discardableResult
  public func execute(_ command: String, arguments: JSONValue? = nil, timeout: Double = 10) throws -> JSONValue {
    try lock.withLock {
      let id = nextID
      nextID += 1
      var message: [String: JSONValue] = ["execute": .string(command), "id": .number(Double(id))]
      if let arguments { message["arguments"] = arguments }
      try connection.send(.object(message))
      let deadline = Date().addingTimeInterval(timeout)
      while true {
        let reply = try connection.receive(timeout: max(0.001, deadline.timeIntervalSinceNow))
        if let name = reply["event"]?.string {
          events.append(QMPEvent(name: name, data: reply["data"] ?? .null))
          continue
        }
        guard reply["id"]?.int == id else { continue }
        if let error = reply["error"] {
          throw QMPError(command: command, description: error["desc"]?.string ?? Self.text(error))
        }
        return reply["return"] ?? .null
      }
    }
  }

  /// Waits up to `timeout` for an event named `name` that arrived after the first `after` events
  /// (pass the count read before the action that causes it).
  public func waitForEvent(_ name: String, after: Int = 0, timeout: Double) throws -> QMPEvent {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
      if let event = lock.withLock({ events.dropFirst(after).first { $0.name == name } }) { return event }
      let remaining = deadline.timeIntervalSinceNow
      guard remaining > 0 else {
        throw LabKitError(.failed, "qemu sent no \(name) event within \(JSONLineConnection.seconds(timeout))")
      }
      let message = try lock.withLock { try connection.receive(timeout: remaining) }
      if let event = message["event"]?.string {
        lock.withLock { events.append(QMPEvent(name: event, data: message["data"] ?? .null)) }
      }
    }
  }

  /// The run state qemu reports (`running`, `paused`, `inmigrate`, `postmigrate`, `shutdown`, …).
  public func status() throws -> QMPStatus {
    let reply = try execute("query-status")
    return QMPStatus(state: reply["status"]?.string ?? "unknown", running: reply["running"]?.bool ?? false)
  }

  /// Stops the guest's CPUs (devices finish the requests under way).
  public func stop() throws { try execute("stop") }

  /// Lets the guest's CPUs run again.
  public func cont() throws { try execute("cont") }

  /// Presses the power button (ACPI): a guest that listens shuts down.
  public func powerDown() throws { try execute("system_powerdown") }

  /// Ends qemu at once; the connection closes under the reply, so a closed connection counts as done.
  public func quit() throws {
    do {
      try execute("quit", timeout: 5)
    } catch let error as LabKitError where error.message.contains("closed the connection") {
      return
    }
  }

  /// Writes the VM's running state (memory, devices) to `file` through `exec:cat > FILE` (qemu 7.2
  /// has no `file:` transport) and waits, polling `query-migrate`, until it completed; a failed
  /// migration throws qemu's reason. Bandwidth is not throttled: the VM is paused, the file is local.
  public func migrate(toFile file: String, timeout: Double = 600) throws -> MigrationResult {
    let started = Date()
    try execute("migrate-set-parameters", arguments: ["max-bandwidth": .number(Double(Int64(1) << 40))])
    try execute("migrate", arguments: ["uri": .string("exec:cat > \(Self.shellQuoted(file))")])
    let deadline = started.addingTimeInterval(timeout)
    // Polled often: the guest is paused while this runs, so a late look is pause time. A poll is a
    // local socket round trip (tens of microseconds); after the first second every 10 ms is enough.
    var pause = 0.0005
    while true {
      let reply = try execute("query-migrate")
      switch reply["status"]?.string {
      case "completed":
        let bytes = reply["ram"]?["total"]?.int ?? 0
        return MigrationResult(seconds: Date().timeIntervalSince(started), ramBytes: bytes)
      case "failed", "cancelled":
        throw QMPError(
          command: "migrate", description: reply["error-desc"]?.string ?? "the migration to \(file) failed")
      default:
        guard Date() < deadline else {
          _ = try? execute("migrate_cancel")
          throw LabKitError(
            .failed, "the migration to \(file) did not complete within \(JSONLineConnection.seconds(timeout))")
        }
        Thread.sleep(forTimeInterval: pause)
        if Date().timeIntervalSince(started) > 1 { pause = 0.01 }
      }
    }
  }

  /// Waits until qemu started with `-incoming` has read the whole state (it left `inmigrate`).
  public func waitForIncoming(timeout: Double = 600) throws -> QMPStatus {
    let deadline = Date().addingTimeInterval(timeout)
    var pause = 0.002
    while true {
      let current = try status()
      if current.state != "inmigrate" { return current }
      guard Date() < deadline else {
        throw LabKitError(
          .failed, "qemu did not finish reading its saved state within \(JSONLineConnection.seconds(timeout))")
      }
      Thread.sleep(forTimeInterval: pause)
      pause = min(pause * 2, 0.05)
    }
  }

  /// A path quoted for `/bin/sh`, which qemu's `exec:` transport runs.
  static func shellQuoted(_ path: String) -> String {
    "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  static func text(_ value: JSONValue) -> String {
    String(decoding: value.encoded().prefix(300), as: UTF8.self)
  }
}

/// An asynchronous message from qemu.
public struct QMPEvent: Equatable, Sendable {
  public var name: String
  public var data: JSONValue
}

/// qemu's answer to `query-status`.
public struct QMPStatus: Equatable, Sendable {
  public var state: String
  public var running: Bool
}

/// What a finished migration to a file took.
public struct MigrationResult: Equatable, Sendable {
  public var seconds: Double
  public var ramBytes: Int
}

/// A command qemu refused, with its own description of why.
public struct QMPError: Error, CustomStringConvertible, Sendable {
  public var command: String
  public var description: String {
    "qemu refused \(command): \(reason)"
  }
  public var reason: String

  init(command: String, description: String) {
    self.command = command
    reason = description
  }
}
