import Foundation
import LabKit

/// The host's free memory as the kernel estimates it (`MemAvailable` in /proc/meminfo): what a new
/// qemu can get without pushing other programs out. A VM asking for more is refused before its qemu
/// runs, since qemu itself would start and the guest fail later, or the host swap to a crawl.
enum HostMemory {
  /// Bytes available for new programs, or nil where /proc/meminfo does not say.
  static func available(meminfo: String = "/proc/meminfo") -> UInt64? {
    guard let text = try? String(contentsOfFile: meminfo, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
      let words = line.split(separator: " ")
      guard words.count >= 2, let kibibytes = UInt64(words[1]) else { return nil }
      return kibibytes * 1024
    }
    return nil
  }

  /// Refuses a start of `vm` whose memory exceeds what the host has free, with both numbers.
  static func check(vm: String, memory: UInt64, available: UInt64?) throws {
    guard let available, memory > available else { return }
    throw LabKitError(
      .invalidState,
      "VM '\(vm)' needs \(describe(memory)) of memory, but this host has \(describe(available)) free (MemAvailable in /proc/meminfo); nothing was started. Free memory on the host (turn off other VMs), or make the VM with a smaller --memory"
    )
  }

  /// "256 MiB", "1.5 GiB": sizes as people read them.
  static func describe(_ bytes: UInt64) -> String {
    let mebibytes = Double(bytes) / 1_048_576
    if mebibytes < 1024 { return String(format: "%.0f MiB", mebibytes) }
    let gibibytes = mebibytes / 1024
    return gibibytes < 1024 ? String(format: "%.1f GiB", gibibytes) : String(format: "%.2f TiB", gibibytes / 1024)
  }
}
