import Foundation

/// Which accelerator qemu uses on this host, and why: the answer of a probe (remembered per
/// host in the library), or of an override.
public struct AcceleratorChoice: Codable, Equatable, Sendable {
  public enum Accelerator: String, Codable, Sendable {
    case kvm
    case tcg
  }

  public var accelerator: Accelerator
  /// For people: `/dev/kvm opened but the probe guest did not reach its agent in 20 s`.
  public var reason: String
  /// The machine the answer is about (its host name), its kernel and qemu: an answer for another
  /// kernel or qemu is probed again.
  public var host: String
  public var kernel: String
  public var qemu: String
  /// When the probe ran; nil for an answer that needed no probe (an override, no image yet).
  public var probed: Date?
  /// How long the probe guest took to reach its agent, when it did.
  public var probeSeconds: Double?

  /// `tcg: /dev/kvm opened but …`
  public var summary: String { "\(accelerator.rawValue): \(reason)" }
}
