import Foundation
import XCTest

@testable import QEMUHost

/// A qemu with no disk under TCG, sitting in SeaBIOS: a real QMP monitor to test against. The test
/// that starts one stops it in its teardown, failed or not; a watchdog kills it if the test hangs.
final class PlainQEMU {
  let folder: String
  let runtime: QEMURuntimeFolder
  let process = Process()
  private let watchdog: DispatchWorkItem

  /// Starts qemu, or skips the test when qemu-system is not installed.
  init(folder: String, memory: UInt64 = 64 << 20, incomingState: String? = nil, watchdogSeconds: Double = 300)
    throws
  {
    let emulator = try Self.emulator()
    self.folder = folder
    runtime = QEMURuntimeFolder(vmFolder: folder)
    try runtime.prepare()
    let commandLine = QEMUCommandLine(
      runtime: runtime, hardware: .init(memory: memory), diskSockets: [], accelerator: "tcg",
      incomingState: incomingState)
    process.executableURL = URL(fileURLWithPath: emulator)
    process.arguments = commandLine.arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let process = self.process
    watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + watchdogSeconds, execute: watchdog)
  }

  /// The emulator's path, or a skip that says what to install.
  static func emulator() throws -> String {
    do {
      return try QEMUInstallation.systemEmulator()
    } catch {
      throw XCTSkip("qemu-system-x86_64 is not installed (Debian qemu-system-x86; Scripts/bootstrap installs it)")
    }
  }

  func connect() throws -> QMPClient { try QMPClient(socketPath: runtime.qmpSocket, timeout: 20) }

  /// Waits up to `timeout` for qemu to exit; true when it did.
  func waitForExit(timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    return !process.isRunning
  }

  func stop() {
    watchdog.cancel()
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  deinit { stop() }
}
