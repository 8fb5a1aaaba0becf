import Foundation

extension HostCapacity {
  /// This machine's memory (`MemTotal`, `MemAvailable` in /proc/meminfo) and the space of the file
  /// system that holds `library`; a figure that cannot be read is 0.
  static func measure(library: String) -> HostCapacity {
    var memoryTotal: Int64 = 0
    var memoryFree: Int64 = 0
    if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
      for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let kib = Int64(fields[1]) else { continue }
        if fields[0] == "MemTotal:" { memoryTotal = kib * 1024 }
        if fields[0] == "MemAvailable:" { memoryFree = kib * 1024 }
      }
    }
    var diskTotal: Int64 = 0
    var diskFree: Int64 = 0
    var stats = statvfs()
    if statvfs(library, &stats) == 0 {
      diskTotal = Int64(stats.f_blocks) * Int64(stats.f_frsize)
      diskFree = Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }
    return HostCapacity(memoryTotal: memoryTotal, memoryFree: memoryFree, diskTotal: diskTotal, diskFree: diskFree)
  }
}
