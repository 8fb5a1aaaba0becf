import DiskServing
import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// The process that runs one VM (`vmlab supervise VM-FOLDER`, started by the driver in a session of
/// its own so that it outlives the command that started it). It owns the VM's NBD exports, the qemu
/// child, the QMP connection and the control socket that later vmlab commands talk to. It never
/// opens the library, so a running VM holds no library lock.
///
/// qemu is started through `setpriv --pdeathsig KILL` from the main thread (the death signal
/// follows the thread that spawned it), so a killed supervisor takes its qemu with it; a qemu that
/// ends, for whatever reason, ends its supervisor, which flushes and closes the exports and records
/// why in the VM folder's status file.
public final class Supervisor: @unchecked Sendable {
  let runtime: QEMURuntimeFolder
  var launch: SupervisorLaunch
  var exports: [ServedChain] = []
  var qemu: ChildProcess?
  var qmp: QMPClient?
  /// Why qemu is ending, when vmlab asked for it (turn off, shut down); else the exit says why.
  var endingReason: String?
  let pid = getpid()

  init(vmFolder: String) throws {
    runtime = QEMURuntimeFolder(vmFolder: vmFolder)
    launch = try SupervisorLaunch.read(from: runtime.launchFile)
  }

  /// Runs the VM until qemu ends; returns the process's exit status.
  public static func run(vmFolder: String) -> Int32 {
    signal(SIGPIPE, SIG_IGN)
    let supervisor: Supervisor
    do {
      supervisor = try Supervisor(vmFolder: vmFolder)
    } catch {
      FileHandle.standardError.write(Data("vmlab supervise: \(error)\n".utf8))
      return 1
    }
    return supervisor.run()
  }

  func run() -> Int32 {
    SupervisorStatus(state: .starting, supervisorPid: pid).write(to: runtime.statusFile)
    let listener: UnixSocketListener
    do {
      try runtime.prepare()
      try startExports()
      try startQEMU()
      listener = try UnixSocketListener(path: runtime.controlSocket)
    } catch {
      log("could not start: \(error)")
      finish(reason: "could not start: \(error)")
      return 1
    }
    SupervisorStatus(
      state: .running, supervisorPid: pid, qemuPid: qemu?.pid, accelerator: launch.accelerator
    ).write(to: runtime.statusFile)
    while qemu?.exitStatus == nil {
      guard let client = listener.accept(timeout: 0.2) else { continue }
      serve(client)
    }
    listener.close()
    let status = qemu!.exitStatus!
    // qemu exits 0 when its guest powers off by itself; anything else is a crash or a kill.
    finish(reason: endingReason ?? (status == 0 ? "the guest powered off" : "qemu \(ChildProcess.describe(status))"))
    return 0
  }

  // MARK: Starting

  private func startExports() throws {
    for (index, leaf) in launch.disks.enumerated() {
      let served = try ServedChain(
        path: leaf, socketPath: runtime.diskSocket(index + 1), name: "disk\(index + 1)")
      served.start()
      exports.append(served)
    }
  }

  private func startQEMU() throws {
    let emulator = try QEMUInstallation.systemEmulator()
    let setpriv = try QEMUInstallation.program("setpriv", package: "util-linux")
    let commandLine = QEMUCommandLine(
      runtime: runtime, hardware: launch.hardware, diskSockets: exports.indices.map { runtime.diskSocket($0 + 1) },
      accelerator: launch.accelerator, incomingState: launch.incomingState)
    unlink(runtime.qmpSocket)
    unlink(runtime.agentSocket)
    let child = try ChildProcess(
      executable: setpriv, arguments: ["--pdeathsig", "KILL", "--", emulator] + commandLine.arguments,
      log: runtime.supervisorLog, newSession: false)
    qemu = child
    // qemu listens on QMP once its devices are up; it may also fail on its command line first.
    let deadline = Date().addingTimeInterval(60)
    while true {
      if let status = child.exitStatus {
        throw LabKitError(
          .failed, "qemu \(ChildProcess.describe(status)) while starting: \(lastLines(runtime.supervisorLog, 3))")
      }
      if let client = try? QMPClient(socketPath: runtime.qmpSocket, timeout: 0.5) {
        qmp = client
        break
      }
      guard Date() < deadline else { throw LabKitError(.failed, "qemu did not open its QMP socket within 60 s") }
    }
    if launch.incomingState != nil {
      _ = try qmp!.waitForIncoming(timeout: 600)
      try qmp!.cont()
      // The guest slept through the time since it was saved: its clock is set where an agent
      // answers, in the background, so a guest without one does not hold up the start.
      let agent = GuestAgent(socketPath: runtime.agentSocket)
      Thread.detachNewThread {
        try? agent.setTime(timeout: 30)
        agent.close()
      }
    }
  }

  // MARK: Control socket

  /// Answers one client's requests, one JSON line each, until it closes the connection.
  private func serve(_ client: JSONLineConnection) {
    defer { client.close() }
    while qemu?.exitStatus == nil {
      guard let request = try? client.receive(timeout: 60) else { return }
      let reply: JSONValue
      do {
        reply = try answer(request)
      } catch {
        reply = ["ok": false, "error": .string("\(error)")]
      }
      guard (try? client.send(reply)) != nil else { return }
      if request["command"]?.string == "quit" { return }
    }
  }

  private func answer(_ request: JSONValue) throws -> JSONValue {
    guard let qmp else { throw LabKitError(.failed, "qemu is not running") }
    switch request["command"]?.string {
    case "status":
      let status = try qmp.status()
      return [
        "ok": true, "state": .string(status.state), "running": .bool(status.running),
        "leaves": .array(exports.map { .string($0.leafPath) }),
        "qemuPid": .number(Double(qemu?.pid ?? 0)), "supervisorPid": .number(Double(pid)),
        "accelerator": .string(launch.accelerator), "attached": .array(try attachedDisks(qmp)),
      ]
    case "pause":
      // The guest's CPUs stop; then every write qemu sent is put on stable storage.
      let started = Date()
      try qmp.stop()
      for export in exports { try export.export.flush() }
      return ["ok": true, "seconds": .number(Date().timeIntervalSince(started))]
    case "monitor":
      // A human monitor command line (`info block`, `qemu-io -d vd1 "read 0 4k"`), for people and tests.
      guard let line = request["line"]?.string else { throw LabKitError(.invalidArgument, "monitor needs a line") }
      let output = try qmp.execute("human-monitor-command", arguments: ["command-line": .string(line)])
      return ["ok": true, "text": output]
    case "cont":
      try qmp.cont()
      return ["ok": true]
    case "switch-disks":
      guard let leaves = request["leaves"]?.array?.compactMap(\.string), leaves.count == exports.count else {
        throw LabKitError(.invalidArgument, "switch-disks needs one leaf per disk (\(exports.count))")
      }
      try ServedChain.switchLeaves(Array(zip(exports, leaves)))
      launch.disks = leaves
      try launch.write(to: runtime.launchFile)
      return ["ok": true]
    case "save-memory":
      guard let file = request["file"]?.string else {
        throw LabKitError(.invalidArgument, "save-memory needs a file")
      }
      guard try !qmp.status().running else {
        throw LabKitError(.invalidState, "the VM must be paused before its memory is saved")
      }
      let result = try qmp.migrate(toFile: file)
      return ["ok": true, "seconds": .number(result.seconds), "bytes": .number(Double(result.ramBytes))]
    case "quit":
      endingReason = request["reason"]?.string ?? "turned off by vmlab"
      try qmp.quit()
      _ = qemu?.wait(timeout: 30)
      return ["ok": true]
    case "shutdown":
      let timeout = request["timeout"].flatMap { $0.int.map(Double.init) } ?? 60
      try GuestAgent(socketPath: runtime.agentSocket).shutdown()
      endingReason = "shut down by its guest"
      guard qemu?.wait(timeout: timeout) != nil else {
        endingReason = nil
        throw LabKitError(.failed, "the guest did not power off within \(Int(timeout)) s")
      }
      return ["ok": true]
    case "console":
      let count = request["lines"]?.int ?? 20
      return ["ok": true, "text": .string(lastLines(runtime.consoleLog, count))]
    case let other:
      throw LabKitError(.invalidArgument, "unknown control command \(other ?? "(none)")")
    }
  }

  /// What qemu itself says each virtio disk reads from (its NBD socket), in slot order.
  private func attachedDisks(_ qmp: QMPClient) throws -> [JSONValue] {
    (try qmp.execute("query-block").array ?? []).compactMap { device in
      device["inserted"]?["file"].map { $0 }
    }
  }

  // MARK: Ending

  /// Flushes and closes the exports, records why the VM is off, removes the sockets.
  private func finish(reason: String) {
    if let qemu, qemu.exitStatus == nil {
      kill(qemu.pid, SIGKILL)
      qemu.wait(timeout: 10)
    }
    qmp?.close()
    for export in exports {
      do { try export.stop() } catch { log("could not flush \(export.leafPath): \(error)") }
    }
    SupervisorStatus(
      state: .off, supervisorPid: pid, qemuPid: qemu?.pid, accelerator: launch.accelerator, reason: reason
    )
    .write(to: runtime.statusFile)
    runtime.removeSockets(disks: launch.disks.count)
    log("VM off: \(reason)")
  }

  private func log(_ message: String) {
    FileHandle.standardError.write(Data("vmlab supervise \(launch.vm): \(message)\n".utf8))
  }
}

/// The last `count` lines of a text file (a console log, a supervisor's messages), "" when absent.
func lastLines(_ file: String, _ count: Int) -> String {
  guard let handle = FileHandle(forReadingAtPath: file) else { return "" }
  defer { try? handle.close() }
  let size = (try? handle.seekToEnd()) ?? 0
  let start = size > 256 << 10 ? size - (256 << 10) : 0
  try? handle.seek(toOffset: start)
  let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
  // A serial console ends its lines with "\r\n", which Swift reads as one character.
  return text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).suffix(count + 1)
    .joined(separator: "\n")
    .trimmingCharacters(in: .whitespacesAndNewlines)
}
