import Foundation

/// Ids of VMs and checkpoints that are unique across a cluster: each library numbers its own from
/// 1, so the host's number goes in the high bits (a script's handles compare ids). Numbers are
/// given in host-name order when the engine opens and to later hosts as they appear; they hold for
/// one engine, as a script's handles do.
struct ClusterIDs {
  /// Bits left to a library's own ids: 2^40 VMs or checkpoints per library.
  static let localBits: Int64 = 40
  private var numbers: [String: Int64] = [:]
  private var names: [Int64: String] = [:]

  mutating func learn(hosts: [String]) {
    for host in hosts.sorted() where numbers[host] == nil {
      let number = Int64(numbers.count + 1)
      numbers[host] = number
      names[number] = host
    }
  }

  mutating func id(_ local: Int64, on host: String) -> Int64 {
    learn(hosts: [host])
    return numbers[host]! << Self.localBits | local
  }

  /// The host and the library's own id of a cluster id; nil when no host has that number.
  func split(_ id: Int64) -> (host: String, local: Int64)? {
    guard id > 0, let host = names[id >> Self.localBits] else { return nil }
    return (host, id & ((1 << Self.localBits) - 1))
  }
}
