import Foundation

/// Where new VMs go: a pure function of the hosts' room, so it is tested without a database.
///
/// Only live hosts take VMs. A VM with `--host-name` goes to that host or nowhere. The others go,
/// largest first, each to the live host with the most free memory left after the VMs already
/// given to it in this choice (ties: the most free disk, then the name), so a batch spreads
/// across hosts in proportion to their room instead of all landing on the emptiest one. A VM fits
/// a host when both its memory and its disks at full size fit what is left there. When one VM
/// fits nowhere, nothing is placed and the error says what was asked and what each host has.
public enum PlacementRule {
  /// The host of each need, in the order of `needs`.
  public static func choose(_ needs: [PlacementNeed], rooms: [HostRoom]) throws -> [String] {
    guard !needs.isEmpty else { return [] }
    let byName = Dictionary(rooms.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for need in needs {
      if let host = need.host {
        guard let room = byName[host] else {
          let known = rooms.map(\.name).sorted()
          throw ClusterError(
            .notFound,
            "VM '\(need.vm)': no host '\(host)' in the cluster (hosts: \(known.isEmpty ? "none yet" : known.joined(separator: ", "))); nothing was created"
          )
        }
        guard room.state == .alive else {
          throw ClusterError(
            .failed,
            "VM '\(need.vm)': host '\(host)' is \(room.state.rawValue) (its agent does not heartbeat); start its agent, or leave out --host-name to place the VM on a live host; nothing was created"
          )
        }
      }
    }
    var left = Dictionary(
      rooms.filter { $0.state == .alive }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    guard !left.isEmpty else {
      throw ClusterError(
        .failed,
        "no live host in the cluster\(rooms.isEmpty ? "" : " (\(describeStates(rooms)))"); start \(ClusterError.startAgent) on a host; nothing was created"
      )
    }
    var chosen = [String?](repeating: nil, count: needs.count)
    // Pinned VMs first: they have no choice. Then the rest, largest first (a big VM placed last
    // may find every host too full for it, when placed first it fits).
    let order =
      needs.indices.filter { needs[$0].host != nil }
      + needs.indices.filter { needs[$0].host == nil }.sorted {
        (needs[$0].memory, needs[$0].disk, $1) > (needs[$1].memory, needs[$1].disk, $0)
      }
    for index in order {
      let need = needs[index]
      let candidates = need.host.map { [left[$0]!] } ?? Array(left.values)
      let fitting = candidates.filter { $0.memoryFree >= need.memory && $0.diskFree >= need.disk }
      guard
        let best = fitting.max(by: {
          ($0.memoryFree, $0.diskFree, $1.name) < ($1.memoryFree, $1.diskFree, $0.name)
        })
      else {
        throw noRoom(for: need, needs: needs, rooms: rooms)
      }
      left[best.name]!.memoryFree -= need.memory
      left[best.name]!.diskFree -= need.disk
      chosen[index] = best.name
    }
    return chosen.map { $0! }
  }

  /// Why `need` fits nowhere, in terms of the whole request: "30 VMs of 1 GiB need 30 GiB of
  /// memory; the live hosts have 8 GiB free: h1 3 GiB, h2 3 GiB, h3 2 GiB".
  static func noRoom(for need: PlacementNeed, needs: [PlacementNeed], rooms: [HostRoom]) -> ClusterError {
    let live = rooms.filter { $0.state == .alive }.sorted { $0.name < $1.name }
    let others = rooms.filter { $0.state != .alive }
    let notLive = others.isEmpty ? "" : " (not live: \(describeStates(others)))"
    let nothing = "; nothing was created"
    if let host = need.host, let room = live.first(where: { $0.name == host }) {
      return ClusterError(
        .failed,
        "VM '\(need.vm)' needs \(bytes(need.memory)) of memory and \(bytes(need.disk)) of disk; host '\(host)' (--host-name) has \(bytes(room.memoryFree)) of memory and \(bytes(room.diskFree)) of disk free\(nothing)"
      )
    }
    let count = needs.count
    let many = count == 1 ? "1 VM" : "\(count) VMs"
    let memory = needs.reduce(Int64(0)) { $0 + $1.memory }
    let disk = needs.reduce(Int64(0)) { $0 + $1.disk }
    let freeMemory = live.reduce(Int64(0)) { $0 + $1.memoryFree }
    let freeDisk = live.reduce(Int64(0)) { $0 + $1.diskFree }
    func each(_ values: [Int64]) -> String {
      Set(values).count == 1 ? " of \(bytes(values[0]))" : ""
    }
    if memory > freeMemory {
      return ClusterError(
        .failed,
        "\(many)\(each(needs.map(\.memory))) need \(bytes(memory)) of memory; the live hosts have \(bytes(freeMemory)) free: \(live.map { "\($0.name) \(bytes($0.memoryFree))" }.joined(separator: ", "))\(notLive)\(nothing)"
      )
    }
    if disk > freeDisk {
      let eachDisk = Set(needs.map(\.disk)).count == 1 ? " with \(bytes(needs[0].disk)) of disk" : ""
      return ClusterError(
        .failed,
        "\(many)\(eachDisk) need \(bytes(disk)) of disk; the live hosts have \(bytes(freeDisk)) of disk free: \(live.map { "\($0.name) \(bytes($0.diskFree))" }.joined(separator: ", "))\(notLive)\(nothing)"
      )
    }
    return ClusterError(
      .failed,
      "VM '\(need.vm)' (\(bytes(need.memory)) of memory, \(bytes(need.disk)) of disk) fits on no live host\(count == 1 ? "" : " once the others of the \(many) are placed"); free: \(live.map { "\($0.name) \(bytes($0.memoryFree)) memory, \(bytes($0.diskFree)) disk" }.joined(separator: "; "))\(notLive)\(nothing)"
    )
  }

  private static func describeStates(_ rooms: [HostRoom]) -> String {
    rooms.sorted { $0.name < $1.name }.map { "\($0.name) \($0.state.rawValue)" }.joined(separator: ", ")
  }

  /// `3 GiB`, `512 MiB`, `1.5 GiB`: binary units, as the command line's sizes.
  static func bytes(_ count: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(count)
    var unit = 0
    while abs(value) >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    if unit == 0 { return "\(count) bytes" }
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(rounded) \(units[unit])"
  }
}
