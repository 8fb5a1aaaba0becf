import ArgumentParser
import Foundation
import LabKit
import QEMUHost

struct HostCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "host", abstract: "What this machine runs VMs with (info), and a cluster's hosts (list).",
    subcommands: [HostInfo.self, HostList.self])
}

struct HostInfo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Show qemu's version and the accelerator VMs get here (KVM where it really works, else TCG).",
    discussion: """
      The first time, KVM is probed by booting the library's tiny image with -accel kvm: it counts only \
      when the guest's agent answers within the time limit. The answer is remembered in the library per \
      host (accelerator/HOST.json) until the kernel or qemu changes; --reprobe runs it again.
      """)

  @Option(name: .customLong("accel"), help: "Use this accelerator instead of probing: kvm or tcg.")
  var accelerator: Hardware.Accelerator = .auto

  @Flag(help: "Probe again even when an answer is remembered.")
  var reprobe = false

  @Option(help: "Seconds the probe guest has to reach its agent.")
  var probeTime: Double = 20

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  func validate() throws {
    guard probeTime > 0 && probeTime <= 600 else {
      throw ValidationError("--probe-time must be from 1 to 600 seconds, not \(probeTime)")
    }
  }

  func run() throws {
    let emulator = try QEMUInstallation.systemEmulator()
    let library = try self.library.open()
    defer { try? library.close() }
    var probe = AcceleratorProbe(library: library.root)
    probe.timeLimit = probeTime
    let choice = try probe.choose(override: accelerator, reprobe: reprobe) { line in
      if !json { FileHandle.standardError.write(Data("vmlab: \(line)\n".utf8)) }
    }
    let images = ImageTemplates(library: library.root).list().map(\.name)
    if json {
      struct Report: Encodable {
        var emulator: String
        var qemu: String
        var machine: String
        var accelerator: AcceleratorChoice
        var images: [String]
      }
      try printJSON(
        Report(emulator: emulator, qemu: choice.qemu, machine: "pc-q35-7.2", accelerator: choice, images: images))
      return
    }
    print("qemu:        \(choice.qemu) (\(emulator))")
    print("machine:     pc-q35-7.2")
    print("accelerator: \(choice.summary)")
    if let probed = choice.probed {
      print("probed:      \(ISO8601DateFormatter().string(from: probed)) on \(choice.host), kernel \(choice.kernel)")
    }
    print("images:      \(images.isEmpty ? "none (`vmlab image build tiny`)" : images.joined(separator: ", "))")
  }
}
