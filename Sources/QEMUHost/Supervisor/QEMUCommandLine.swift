import Foundation
import LabKit

/// The qemu-system-x86_64 arguments for a VM: a pinned machine type (saved memory restores only
/// into the same device model), nothing qemu would add by itself (`-nodefaults -no-user-config`),
/// no display, QMP and the guest agent on sockets, the serial console into a log file, and each
/// disk as a virtio-blk device over an NBD export served by the supervisor.
public struct QEMUCommandLine: Sendable {
  /// qemu 7.2's q35 machine: pinned, so that a state saved by this qemu loads into the same model.
  public static let machineType = "pc-q35-7.2"

  public var runtime: QEMURuntimeFolder
  public var hardware: Hardware
  /// The NBD sockets of the disks, in slot order (disk 1 first).
  public var diskSockets: [String]
  public var accelerator: String
  public var incomingState: String?

  public init(
    runtime: QEMURuntimeFolder, hardware: Hardware, diskSockets: [String], accelerator: String,
    incomingState: String? = nil
  ) {
    self.runtime = runtime
    self.hardware = hardware
    self.diskSockets = diskSockets
    self.accelerator = accelerator
    self.incomingState = incomingState
  }

  public var arguments: [String] {
    var arguments = [
      "-machine", "\(Self.machineType)", "-accel", accelerator, "-nodefaults", "-no-user-config",
      "-display", "none", "-m", "\(hardware.memory >> 20)M", "-smp", "\(hardware.cpus)",
      "-chardev", "socket,id=qmp,path=\(Self.option(runtime.qmpSocket)),server=on,wait=off",
      "-mon", "chardev=qmp,mode=control",
      // The serial console on a socket one user can attach to; everything it prints is logged.
      "-chardev",
      "socket,id=serial0,path=\(Self.option(runtime.consoleSocket)),server=on,wait=off,logfile=\(Self.option(runtime.consoleLog)),logappend=on",
      "-serial", "chardev:serial0",
      "-chardev", "socket,id=agent,path=\(Self.option(runtime.agentSocket)),server=on,wait=off",
      "-device", "virtio-serial-pci",
      "-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0",
    ]
    for (index, socket) in diskSockets.enumerated() {
      // Writes pass through qemu uncached: the export is the cache's owner and flushes reach it.
      let node: JSONValue = [
        "driver": "nbd", "node-name": .string("disk\(index + 1)"),
        "server": ["type": "unix", "path": .string(socket)],
        "cache": ["direct": false, "no-flush": false],
      ]
      arguments += ["-blockdev", String(decoding: node.encoded(), as: UTF8.self)]
      var device = "virtio-blk-pci,drive=disk\(index + 1),id=vd\(index + 1)"
      if index == 0, case .firmware = hardware.boot { device += ",bootindex=0" }
      arguments += ["-device", device]
    }
    if case .kernel(let path, let initrd, let commandLine) = hardware.boot {
      arguments += ["-kernel", path]
      if let initrd { arguments += ["-initrd", initrd] }
      if !commandLine.isEmpty { arguments += ["-append", commandLine] }
    }
    if let incomingState {
      arguments += ["-incoming", "exec:cat \(QMPClient.shellQuoted(incomingState))"]
    }
    return arguments
  }

  /// A value inside a qemu `-chardev`/`-device` option list, where a comma is written twice.
  static func option(_ value: String) -> String {
    value.replacingOccurrences(of: ",", with: ",,")
  }
}
