import Foundation

/// What one new VM asks of the host that gets it: memory and disk (its disks at their full size,
/// which dynamic disks may grow to), and the host it must go to when the user named one.
public struct PlacementNeed: Sendable, Equatable {
  public var vm: String
  public var memory: Int64
  public var disk: Int64
  /// `--host-name`: this host or none.
  public var host: String?

  public init(vm: String, memory: Int64, disk: Int64, host: String? = nil) {
    self.vm = vm
    self.memory = memory
    self.disk = disk
    self.host = host
  }

  /// What a `create-vm` step asks: its memory (1 GiB by default, as the engine's), its empty
  /// disks, and for an image VM the image's files (its root disk's clone may grow to that much).
  public init(step: CreateVMStep, host: String? = nil, imageBytes: [String: Int64] = [:]) {
    let disks = step.disks.reduce(Int64(0)) { $0 + Int64(clamping: $1) }
    let image = step.image.flatMap { imageBytes[$0] } ?? 0
    self.init(
      vm: step.name, memory: Int64(clamping: step.memory ?? CreateVMStep.defaultMemory), disk: disks + image,
      host: host)
  }
}
