import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// A one-off qemu guest outside any library: an image's kernel and root disk booted with a plain
/// command line, for the accelerator probe and for tests. Its disk is opened with `snapshot=on`
/// (qemu's vpc driver reads the dynamic VHD; writes go to a throw-away overlay), so the image is
/// never changed. Library VMs are run by their supervisor, not by this.
///
/// qemu runs under coreutils' `timeout`, so it ends at `lifetime` even if this process dies
/// without stopping it.
public final class ScratchGuest: @unchecked Sendable {
  /// Where the agent socket and the console log go.
  public let runtime: String
  public let arguments: [String]
  public let lifetime: Double
  private var process: Process?

  public var agentSocket: String { "\(runtime)/\(GuestAgent.socketName)" }
  public var consoleLog: String { "\(runtime)/console.log" }
  public lazy var agent = GuestAgent(socketPath: agentSocket)

  /// How qemu runs: the accelerator, the memory, the machine type (pinned, as for VMs).
  public struct Settings: Sendable {
    public var accelerator: String = "tcg"
    public var memoryMiB = 256
    public var machine = "pc-q35-7.2"
    public var lifetime: Double = 300
    public init() {}
  }

  /// Boots the image in `templateFolder` (its `image.json` names the files) from its kernel.
  public convenience init(image: ImageManifest, templateFolder: String, runtime: String, settings: Settings = .init())
    throws
  {
    self.init(
      runtime: runtime,
      boot: [
        "-kernel", "\(templateFolder)/\(image.kernel)", "-initrd", "\(templateFolder)/\(image.initrd)",
        "-append", image.commandLine,
      ],
      disks: [.throwAway("\(templateFolder)/\(image.rootDisk)", format: "vpc")], settings: settings)
  }

  /// A virtio-blk disk of the guest, as qemu's `-drive` options.
  public struct Disk: Sendable {
    public var options: String

    /// A file qemu opens itself, its writes kept in a temporary overlay (the file never changes).
    public static func throwAway(_ path: String, format: String) -> Disk {
      Disk(options: "file=\(path.replacingOccurrences(of: ",", with: ",,")),format=\(format),snapshot=on")
    }

    /// An export of an NBD server on a UNIX socket (a VHD chain served by vmlab), read and written.
    public static func nbd(socket: String, export: String) -> Disk {
      Disk(options: "driver=nbd,server.type=unix,server.path=\(socket),export=\(export)")
    }
  }

  /// Boots from `disks` through the firmware, or with the `boot` options given.
  public init(runtime: String, boot: [String] = [], disks: [Disk], settings: Settings = .init()) {
    self.runtime = runtime
    self.lifetime = settings.lifetime
    var arguments = [
      "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-machine", settings.machine,
      "-accel", settings.accelerator, "-m", "\(settings.memoryMiB)", "-serial", "file:\(runtime)/console.log",
    ]
    arguments += boot
    for (index, disk) in disks.enumerated() {
      arguments += [
        "-drive", "\(disk.options),if=none,id=disk\(index + 1)",
        "-device", "virtio-blk-pci,drive=disk\(index + 1)" + (index == 0 && boot.isEmpty ? ",bootindex=1" : ""),
      ]
    }
    arguments += [
      "-chardev", "socket,id=agent,path=\(runtime)/\(GuestAgent.socketName),server=on,wait=off",
      "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=agent,name=org.qemu.guest_agent.0",
    ]
    self.arguments = arguments
  }

  deinit { stop() }

  public func start() throws {
    let emulator = try QEMUInstallation.systemEmulator()
    try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: consoleLog, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try BuildTool(name: "timeout", package: "coreutils").path())
    process.arguments = ["--signal=KILL", "\(Int(lifetime.rounded(.up)))", emulator] + arguments
    process.standardInput = FileHandle.nullDevice
    let errors = "\(runtime)/qemu.err"
    _ = FileManager.default.createFile(atPath: errors, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
    try process.run()
    self.process = process
  }

  public var isRunning: Bool { process?.isRunning ?? false }

  /// Waits until qemu ends, up to `timeout` seconds; true when it did.
  public func waitForExit(timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    return !isRunning
  }

  /// Kills qemu (its `timeout` wrapper passes the signal on) and waits for it.
  public func stop() {
    agent.close()
    guard let process, process.isRunning else { return }
    // qemu is timeout(1)'s child: killed directly, it ends at once (a KVM guest may not answer a
    // polite signal), and timeout then exits. A TERM to timeout, which it passes on, covers a
    // qemu not started yet.
    let wrapper = process.processIdentifier
    let children =
      (try? String(contentsOfFile: "/proc/\(wrapper)/task/\(wrapper)/children", encoding: .utf8)) ?? ""
    for child in children.split(separator: " ").compactMap({ pid_t($0) }) { kill(child, SIGKILL) }
    if !waitForExit(timeout: 5) {
      kill(wrapper, SIGTERM)
      _ = waitForExit(timeout: 10)
    }
  }

  /// Everything the guest wrote on its serial console so far.
  public func console() -> String {
    String(decoding: FileManager.default.contents(atPath: consoleLog) ?? Data(), as: UTF8.self)
  }

  /// The last `count` lines of the console, for error messages.
  public func consoleTail(_ count: Int = 15) -> String {
    console().split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
  }

  /// What qemu itself printed (errors about its command line, KVM).
  public func emulatorErrors() -> String {
    String(decoding: FileManager.default.contents(atPath: "\(runtime)/qemu.err") ?? Data(), as: UTF8.self)
  }

  /// Waits up to `timeout` seconds for `marker` on the console; false when it did not come or
  /// qemu ended first.
  public func waitForConsole(_ marker: String, timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if console().contains(marker) { return true }
      if !isRunning { return console().contains(marker) }
      Thread.sleep(forTimeInterval: 0.1)
    }
    return false
  }
}
