import Foundation
import VHD

/// A VM's virtual hardware, kept in the catalog and in its manifest, and handed to its host when
/// it starts. The simulated host runs no guest and only records it.
public struct Hardware: Codable, Equatable, Sendable {
  /// How the VM boots.
  public enum Boot: Codable, Equatable, Sendable {
    /// The firmware boots from disk 1.
    case firmware
    /// The host loads a kernel (and an initial RAM disk) directly, with this command line.
    case kernel(path: String, initrd: String?, commandLine: String)
  }

  /// The VM's network. None for now: labs talk to their guests through the host.
  public enum Network: String, Codable, Equatable, Sendable, CaseIterable {
    case none
  }

  /// Which accelerator the host should use.
  public enum Accelerator: String, Codable, Equatable, Sendable, CaseIterable {
    /// Hardware virtualisation where it really works, else emulation.
    case auto
    /// Hardware virtualisation (KVM), or fail.
    case kvm
    /// Emulation (TCG): slower, works everywhere.
    case tcg
  }

  public static let defaultMemory: UInt64 = 1 << 30
  public static let memoryRange: ClosedRange<UInt64> = (16 << 20)...(1 << 40)
  public static let cpuRange: ClosedRange<Int> = 1...256

  /// Memory in bytes, a whole number of MiB.
  public var memory: UInt64
  public var cpus: Int
  public var boot: Boot
  public var network: Network
  public var accelerator: Accelerator

  public init(
    memory: UInt64 = Hardware.defaultMemory, cpus: Int = 1, boot: Boot = .firmware, network: Network = .none,
    accelerator: Accelerator = .auto
  ) {
    self.memory = memory
    self.cpus = cpus
    self.boot = boot
    self.network = network
    self.accelerator = accelerator
  }

  /// Checks the settings for VM `vm`: memory and CPUs within bounds, and a kernel and initrd that
  /// are files (made absolute, since a host starts later from another folder).
  public func validated(for vm: String) throws -> Hardware {
    var result = self
    guard Hardware.memoryRange.contains(memory), memory % (1 << 20) == 0 else {
      throw LabKitError(
        .invalidArgument,
        "VM '\(vm)' cannot have \(memory) bytes of memory: give a whole number of MiB from 16M to 1T (for example 2G)")
    }
    guard Hardware.cpuRange.contains(cpus) else {
      throw LabKitError(.invalidArgument, "VM '\(vm)' cannot have \(cpus) CPUs: give 1 to 256")
    }
    if case .kernel(let path, let initrd, let commandLine) = boot {
      result.boot = .kernel(
        path: try Hardware.bootFile(path, "kernel", vm: vm),
        initrd: try initrd.map { try Hardware.bootFile($0, "initrd", vm: vm) }, commandLine: commandLine)
      guard !commandLine.contains(where: { $0.isNewline || $0 == "\0" }) else {
        throw LabKitError(.invalidArgument, "VM '\(vm)': the kernel command line must be one line")
      }
    }
    return result
  }

  private static func bootFile(_ path: String, _ what: String, vm: String) throws -> String {
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isFolder), !isFolder.boolValue else {
      throw LabKitError(
        .notFound, "VM '\(vm)': the \(what) \(absolute) is not a file; give the path of the \(what) to boot")
    }
    return absolute
  }

  /// One line for people: `1 GiB, 1 CPU, boots from disk 1, no network, accelerator auto`.
  public var summary: String {
    let bootText: String
    switch boot {
    case .firmware: bootText = "boots from disk 1"
    case .kernel(let path, let initrd, let commandLine):
      bootText =
        "boots kernel \(path)" + (initrd.map { " with initrd \($0)" } ?? "")
        + (commandLine.isEmpty ? "" : " (\(commandLine))")
    }
    return
      "\(ByteCount.format(memory)) memory, \(cpus) CPU\(cpus == 1 ? "" : "s"), \(bootText), network \(network.rawValue), accelerator \(accelerator.rawValue)"
  }
}
