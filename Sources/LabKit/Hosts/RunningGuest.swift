import Foundation

/// The guest of a VM whose host has a guest agent (`GuestAgentHost`): commands run inside it.
///
/// It holds what the host needs (the driver and the VM's folder and disks) and nothing of the
/// library, so a long command keeps no lock: other vmlab commands go on while a guest works.
public struct RunningGuest: Sendable {
  public let vm: String
  private let host: GuestAgentHost
  /// The same host, for errors that name it.
  private let reporting: ReportingHost
  private let hosted: HostedVM

  /// The guest of VM `vm`, whose host must offer a guest agent.
  public init(library: Library, vm: String) throws {
    let record = try library.catalog.read { db in try library.vmRecord(db, named: vm) }
    let reporting = try library.driver(record)
    guard let host = reporting.driver as? GuestAgentHost else {
      throw LabKitError(
        .invalidState,
        "VM '\(record.name)' runs on the host '\(record.host)', which runs no guest to reach inside; commands run in guests of a real host (create the VM with --host qemu)"
      )
    }
    guard record.state == .running else {
      throw LabKitError(
        .invalidState,
        "VM '\(record.name)' is \(record.state); commands run only in a running guest (start it with `vmlab vm start \(record.name)`)"
      )
    }
    self.vm = record.name
    self.host = host
    self.reporting = reporting
    self.hosted = try library.hosted(record)
  }

  /// Runs `command` inside the guest and returns what it left; its exit status is the program's,
  /// not an error. Fails when the VM does not run or its agent does not answer.
  public func run(_ command: GuestCommand) throws -> GuestCommandResult {
    try reporting.call("run `\(command.displayText)` in") { try host.run(command, in: hosted) }
  }

  /// Waits until the guest's agent answers, at most `timeout` seconds; a guest that is not ready
  /// in time fails with the last lines of its console.
  public func waitUntilReady(timeout: Double) throws {
    do {
      try reporting.call("wait for the guest agent of") { try host.waitUntilReady(hosted, timeout: timeout) }
    } catch let error as LabKitError {
      let console = recentConsole(lines: 15).trimmingCharacters(in: .whitespacesAndNewlines)
      guard !console.isEmpty else { throw error }
      throw LabKitError(error.kind, "\(error.message)\nthe last lines of VM '\(vm)''s console:\n\(console)")
    }
  }

  /// The last lines the guest wrote to its console.
  public func recentConsole(lines: Int) -> String { host.recentConsole(of: hosted, lines: lines) }
}
