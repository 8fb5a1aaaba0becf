import Foundation
import LabKit

/// LabKit's host on qemu: each running VM is a supervisor process (`vmlab supervise VM-FOLDER`)
/// that owns qemu and the VM's NBD exports; this driver talks to it over its control socket.
/// Nothing here holds state between calls, so any vmlab process drives any VM another one started.
public final class QEMUHost: GuestAgentHost, @unchecked Sendable {
  /// The executable that runs supervisors (vmlab itself) and the arguments before the VM folder.
  let supervisorCommand: [String]
  /// Where a VM's folder is, by name (the library the process opened decides).
  let vmFolder: @Sendable (String) -> String
  /// How long a guest has to shut down before it is turned off.
  public var shutdownTimeLimit: Double = 60
  /// How long a start may take until the supervisor answers (a saved state of gigabytes loads first).
  public var startTimeLimit: Double = 600

  /// Which accelerator a VM gets (`kvm` or `tcg`) for its `auto`, `kvm` or `tcg` setting.
  let accelerator: @Sendable (Hardware.Accelerator) throws -> String

  /// `accelerator` answers `auto` (by default with TCG; the vmlab executable asks the probe, which
  /// remembers per host whether KVM really works).
  public init(
    supervisor executable: String, vmFolder: @escaping @Sendable (String) -> String,
    accelerator: @escaping @Sendable (Hardware.Accelerator) throws -> String = { $0 == .kvm ? "kvm" : "tcg" }
  ) {
    supervisorCommand = [executable, "supervise"]
    self.vmFolder = vmFolder
    self.accelerator = accelerator
  }

  public var capabilities: HostCapabilities { .all }

  func runtime(_ vm: String) -> QEMURuntimeFolder { QEMURuntimeFolder(vmFolder: vmFolder(vm)) }

  // MARK: Power

  public func start(_ vm: HostedVM) throws {
    try launch(vm, incomingState: nil)
  }

  public func resume(_ vm: HostedVM, from file: String) throws {
    // The supervisor sets the guest's clock afterwards, where an agent answers (see Supervisor).
    try launch(vm, incomingState: file)
  }

  public func shutDown(vm: String) throws {
    guard let control = try? SupervisorControl(runtime: runtime(vm)) else { return }
    do {
      try control.request(
        ["command": "shutdown", "timeout": .number(shutdownTimeLimit)], timeout: shutdownTimeLimit + 15)
    } catch {
      // The agent did not answer or the guest took too long: the power is cut, and the caller told.
      try turnOff(vm: vm)
      throw LabKitError(.failed, "VM '\(vm)' did not shut down (\(error)); it was turned off")
    }
    waitUntilGone(vm)
  }

  public func turnOff(vm: String) throws {
    guard let control = try? SupervisorControl(runtime: runtime(vm)) else { return }
    try control.request(["command": "quit"], timeout: 40)
    waitUntilGone(vm)
  }

  public func powerState(of vm: String) throws -> HostPowerState {
    // A VM left paused (a crash during an online checkpoint) says so; reconciliation continues it.
    // No control socket: nothing runs (asked of every VM when a library opens, so no waiting).
    guard FileManager.default.fileExists(atPath: runtime(vm).controlSocket) else { return .off }
    guard let status = try? status(vm: vm) else {
      // A supervisor whose qemu ended may still be flushing its exports: off once it has.
      waitUntilGone(vm)
      return .off
    }
    return status.state == "running" ? .running : .paused
  }

  /// What the supervisor reports of a running VM; throws when none runs.
  public func status(vm: String) throws -> QEMUVMStatus {
    let reply = try SupervisorControl(runtime: runtime(vm)).request(["command": "status"], timeout: 10)
    return QEMUVMStatus(
      state: reply["state"]?.string ?? "unknown", leaves: reply["leaves"]?.array?.compactMap(\.string) ?? [],
      qemuPid: Int32(reply["qemuPid"]?.int ?? 0), supervisorPid: Int32(reply["supervisorPid"]?.int ?? 0),
      accelerator: reply["accelerator"]?.string ?? "",
      attached: reply["attached"]?.array?.compactMap(\.string) ?? [])
  }

  /// Runs a human monitor command line in the VM's qemu and returns what it printed.
  public func monitor(vm: String, _ line: String) throws -> String {
    try SupervisorControl(runtime: runtime(vm)).request(["command": "monitor", "line": .string(line)], timeout: 60)[
      "text"]?.string ?? ""
  }

  /// Why a VM that is not running stopped, as its supervisor last recorded it; nil when it runs or
  /// never ran here.
  public func lastStop(vm: String) -> String? {
    let runtime = runtime(vm)
    guard let recorded = SupervisorStatus.read(from: runtime.statusFile) else { return nil }
    if recorded.state == .off { return recorded.reason }
    guard (try? SupervisorControl(runtime: runtime, timeout: 0.5)) == nil else { return nil }
    // Its control socket closes before it has flushed its exports and recorded why.
    waitUntilGone(vm)
    if let final = SupervisorStatus.read(from: runtime.statusFile), final.state == .off { return final.reason }
    return "its supervisor (pid \(recorded.supervisorPid)) ended without recording why (it was killed)"
  }

  // MARK: Saved state

  public func saveMemoryAndStop(vm: String, to file: String) throws {
    let control = try SupervisorControl(runtime: runtime(vm))
    try control.request(["command": "pause"], timeout: 60)
    try control.request(["command": "save-memory", "file": .string(file)], timeout: 3600)
    try control.request(["command": "quit", "reason": "saved by vmlab"], timeout: 40)
    waitUntilGone(vm)
  }

  // MARK: Online checkpoint

  /// Stops the guest's CPUs and flushes every export.
  public func pause(vm: String) throws {
    try SupervisorControl(runtime: runtime(vm)).request(["command": "pause"], timeout: 60)
  }

  /// Writes the paused VM's memory and devices to `file`; it stays paused.
  public func saveMemory(vm: String, to file: String) throws {
    try SupervisorControl(runtime: runtime(vm)).request(
      ["command": "save-memory", "file": .string(file)], timeout: 3600)
  }

  /// Points every export of the VM at its new leaf (all together, between two requests).
  public func switchDisks(vm: String, to leaves: [String]) throws {
    try SupervisorControl(runtime: runtime(vm)).request(
      ["command": "switch-disks", "leaves": .array(leaves.map { .string($0) })], timeout: 60)
  }

  /// Lets a paused VM run again.
  public func continueRunning(vm: String) throws {
    try SupervisorControl(runtime: runtime(vm)).request(["command": "cont"], timeout: 30)
  }

  // MARK: Guest agent

  /// A client of the VM's guest agent, for one call (the agent's port takes one client at a time,
  /// and any vmlab process may be the next).
  private func agent(_ vm: String) -> GuestAgent { GuestAgent(socketPath: runtime(vm).agentSocket) }

  public func run(_ command: GuestCommand, in vm: HostedVM) throws -> GuestCommandResult {
    guard (try? status(vm: vm.name)) != nil else {
      throw LabKitError(
        .invalidState, "VM '\(vm.name)' does not run (its qemu is gone); start it with `vmlab vm start \(vm.name)`")
    }
    let agent = agent(vm.name)
    defer { agent.close() }
    let result = try agent.exec(
      path: command.path, arguments: command.arguments, input: command.input, timeout: command.timeout)
    return GuestCommandResult(standardOutput: result.stdout, standardError: result.stderr, status: result.status)
  }

  public func recentConsole(of vm: HostedVM, lines: Int) -> String { console(vm: vm.name, lines: lines) }

  public func runningAccelerator(of vm: HostedVM) -> String? {
    (try? status(vm: vm.name)).map(\.accelerator).flatMap { $0.isEmpty ? nil : $0 }
  }

  public func waitUntilReady(_ vm: HostedVM, timeout: Double) throws {
    let agent = agent(vm.name)
    defer { agent.close() }
    try agent.waitReady(timeout: timeout)
  }

  public func freezeFileSystems(vm: String) throws {
    _ = try agent(vm).freeze()
  }

  public func thawFileSystems(vm: String) throws {
    _ = try agent(vm).thaw()
  }

  /// The last lines of the VM's serial console (from its log, which outlives the VM).
  public func console(vm: String, lines: Int) -> String {
    lastLines(runtime(vm).consoleLog, lines)
  }

  // MARK: Supervisors

  /// Starts a supervisor for the VM and waits until its control socket answers; a supervisor that
  /// ends first fails the start with the reason it recorded.
  private func launch(_ vm: HostedVM, incomingState: String?) throws {
    let runtime = QEMURuntimeFolder(vmFolder: vm.folder)
    if (try? SupervisorControl(runtime: runtime, timeout: 0.5)) != nil {
      throw LabKitError(
        .invalidState, "VM '\(vm.name)' already runs (its supervisor answers on \(runtime.controlSocket))")
    }
    _ = try QEMUInstallation.systemEmulator()
    try HostMemory.check(vm: vm.name, memory: vm.hardware.memory, available: HostMemory.available())
    let accelerator = try accelerator(vm.hardware.accelerator)
    try SupervisorLaunch(
      vm: vm.name, disks: vm.disks, hardware: vm.hardware, incomingState: incomingState, accelerator: accelerator
    ).write(to: runtime.launchFile)
    try? FileManager.default.removeItem(atPath: runtime.statusFile)
    let supervisor = try ChildProcess(
      executable: supervisorCommand[0], arguments: Array(supervisorCommand.dropFirst()) + [runtime.vmFolder],
      log: runtime.supervisorLog, newSession: true)
    let deadline = Date().addingTimeInterval(startTimeLimit)
    while true {
      if let status = supervisor.exitStatus {
        let recorded = SupervisorStatus.read(from: runtime.statusFile)?.reason
        throw LabKitError(
          .failed,
          "VM '\(vm.name)' did not start: \(recorded ?? "its supervisor \(ChildProcess.describe(status))")"
            + Self.consoleTail(runtime))
      }
      if SupervisorStatus.read(from: runtime.statusFile)?.state == .running,
        let control = try? SupervisorControl(runtime: runtime, timeout: 0.5),
        (try? control.request(["command": "status"], timeout: 10)) != nil
      {
        return
      }
      guard Date() < deadline else {
        kill(supervisor.pid, SIGKILL)
        throw LabKitError(
          .failed, "VM '\(vm.name)' did not start within \(Int(startTimeLimit)) s" + Self.consoleTail(runtime))
      }
      usleep(20_000)
    }
  }

  private static func consoleTail(_ runtime: QEMURuntimeFolder) -> String {
    let tail = lastLines(runtime.consoleLog, 5)
    return tail.isEmpty ? "" : "; the console's last lines:\n\(tail)"
  }

  /// Waits (up to 30 s) until the VM's supervisor no longer answers.
  /// Waits until the VM's supervisor has recorded the VM off or is gone. Its process decides, not
  /// its control socket: the socket closes as soon as qemu ends, before the exports are flushed,
  /// and a command that went on then could change files the supervisor still writes.
  private func waitUntilGone(_ vm: String) {
    let runtime = runtime(vm)
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
      guard let recorded = SupervisorStatus.read(from: runtime.statusFile), recorded.state != .off,
        ProcessLiveness.isAlive(recorded.supervisorPid, runningCommandWith: "supervise")
      else { return }
      usleep(20_000)
    }
  }
}

/// What a running VM's supervisor reports.
public struct QEMUVMStatus: Equatable, Sendable {
  /// qemu's run state: `running`, `paused`, `postmigrate`, …
  public var state: String
  /// The leaf each export writes to, in slot order.
  public var leaves: [String]
  public var qemuPid: Int32
  public var supervisorPid: Int32
  public var accelerator: String
  /// What qemu says each disk reads from (`nbd+unix:///disk1?socket=…`), in slot order.
  public var attached: [String]
}

extension JSONValue {
  var number: Double? {
    if case .number(let value) = self { return value }
    return nil
  }
}
