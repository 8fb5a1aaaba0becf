import Foundation
import LabKit

/// What a supervisor is asked to run, written by the driver into the VM folder before it starts
/// the supervisor: the VM, the leaves its disks write to, its hardware, and the saved state to
/// resume from (nil for a cold boot).
public struct SupervisorLaunch: Codable, Equatable, Sendable {
  public var vm: String
  public var disks: [String]
  public var hardware: Hardware
  /// A file written by a migration to resume from (`-incoming`), or nil to boot.
  public var incomingState: String?
  /// The accelerator qemu is given: `tcg` or `kvm` (the driver resolves `auto`).
  public var accelerator: String

  public init(vm: String, disks: [String], hardware: Hardware, incomingState: String?, accelerator: String) {
    self.vm = vm
    self.disks = disks
    self.hardware = hardware
    self.incomingState = incomingState
    self.accelerator = accelerator
  }

  public func write(to file: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(self).write(to: URL(fileURLWithPath: file), options: .atomic)
  }

  public static func read(from file: String) throws -> SupervisorLaunch {
    guard let data = FileManager.default.contents(atPath: file) else {
      throw LabKitError(.notFound, "no launch description at \(file); the supervisor is started by `vmlab vm start`")
    }
    do {
      return try JSONDecoder().decode(SupervisorLaunch.self, from: data)
    } catch {
      throw LabKitError(.failed, "the launch description \(file) cannot be read: \(error)")
    }
  }
}
