import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// Where a running VM's sockets live: QMP, the guest agent, the supervisor's control socket and one
/// NBD socket per disk. UNIX socket paths are limited to 107 bytes and a library's path can be
/// long, so they live in the VM's folder when the longest path fits there, else in a short folder
/// named by a hash of the VM folder under `/run/vmlab` (or `$TMPDIR` where that cannot be made),
/// and the VM folder holds a pointer file naming it. One place computes it, so every process finds
/// the same sockets.
public struct QEMURuntimeFolder: Equatable, Sendable {
  /// The VM's folder in the library (absolute).
  public let vmFolder: String
  /// The folder holding the sockets.
  public let path: String

  /// Room for the longest socket name below (`disk255.sock` and a slash).
  static let longestName = 16
  static let socketPathLimit = 107
  /// The file in the VM folder that names a runtime folder elsewhere (for people and cleanup).
  public static let pointerName = "runtime-folder"

  public init(vmFolder: String) {
    let folder = URL(fileURLWithPath: vmFolder).standardizedFileURL.path
    self.vmFolder = folder
    if folder.utf8.count + Self.longestName <= Self.socketPathLimit {
      path = folder
    } else {
      let name = "vmlab-" + Self.hash(folder)
      let run = "/run/vmlab"
      if (try? FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)) != nil,
        access(run, W_OK) == 0
      {
        path = run + "/" + name
      } else {
        let temporary = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        path = URL(fileURLWithPath: temporary).standardizedFileURL.path + "/" + name
      }
    }
  }

  public var usesVMFolder: Bool { path == vmFolder }
  public var qmpSocket: String { path + "/qmp.sock" }
  public var agentSocket: String { path + "/agent.sock" }
  public var controlSocket: String { path + "/control.sock" }
  /// The serial console, for `vm console --attach` (what it prints also goes to `consoleLog`).
  public var consoleSocket: String { path + "/console.sock" }
  public func diskSocket(_ number: Int) -> String { path + "/disk\(number).sock" }

  /// The serial console's log, in the VM folder (it outlives the VM).
  public var consoleLog: String { vmFolder + "/console.log" }
  /// What the supervisor last recorded: running, or off and why.
  public var statusFile: String { vmFolder + "/qemu-status.json" }
  /// What the supervisor is asked to run (written by the driver before it starts one).
  public var launchFile: String { vmFolder + "/qemu-launch.json" }
  /// The supervisor's own messages (its standard error).
  public var supervisorLog: String { vmFolder + "/supervisor.log" }

  /// Makes the folder (and the pointer file when it is not the VM folder).
  public func prepare() throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      if !usesVMFolder {
        try Data((path + "\n").utf8).write(to: URL(fileURLWithPath: vmFolder + "/" + Self.pointerName))
      }
    } catch {
      throw LabKitError(.failed, "cannot prepare the runtime folder \(path) of the VM in \(vmFolder): \(error)")
    }
  }

  /// Removes the sockets (and the folder when it is not the VM folder) after the VM stopped.
  public func removeSockets(disks: Int) {
    var sockets = [qmpSocket, agentSocket, controlSocket, consoleSocket]
    sockets += (0...max(disks, 0)).map { diskSocket($0) }
    for socket in sockets { unlink(socket) }
    if !usesVMFolder {
      rmdir(path)
      unlink(vmFolder + "/" + Self.pointerName)
    }
  }

  /// FNV-1a, 64 bits, as 16 hex digits: stable across processes and runs (Swift's `Hasher` is not).
  static func hash(_ text: String) -> String {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      value ^= UInt64(byte)
      value = value &* 0x100_0000_01b3
    }
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
  }
}
