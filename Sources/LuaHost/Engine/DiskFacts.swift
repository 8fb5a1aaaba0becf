import Foundation
import VHD

/// What Disk properties read from VHD files (size, type, the chain's paths), kept per path with the
/// identity of every file they came from (`FileIdentity`: one stat per file). A file replaced or
/// rewritten since is read again.
///
/// A stat costs about 2 µs on a virtual machine, more than the 1 µs a property read may take, so a
/// file checked less than a millisecond ago is not checked again, unless this process may have
/// changed it since: every engine call and every Disk method that writes calls `mayHaveChanged()`,
/// which makes the next read check. Only another process can then change a file unseen, and only
/// for that millisecond, the same order as the file system's timestamp resolution, which any
/// stat-based check has to live with anyway.
final class DiskFacts {
  struct Leaf {
    let size: UInt64
    let type: DiskType
  }

  /// What was read from a file, its identity then, and when (and in which round of changes) that
  /// identity was last confirmed.
  private struct Checked<Facts> {
    let facts: Facts
    let files: [String]
    let identities: [FileIdentity]
    var confirmedAt: UInt64
    var round: Int
  }

  static let recheckAfterNanoseconds: UInt64 = 1_000_000
  private var leaves: [String: Checked<Leaf>] = [:]
  private var chains: [String: Checked<[String]>] = [:]
  /// Bumped by `mayHaveChanged()`: facts confirmed in an earlier round are checked again.
  private var round = 0

  /// The footer's facts of the disk at `path`.
  func leaf(_ path: String) throws -> Leaf {
    if let facts = confirmed(&leaves, path) { return facts }
    // The identity is taken before reading, so a change made while reading shows at the next read.
    let identity = FileIdentity(path: path)
    let disk = try VirtualDisk.open(path)
    defer { disk.close() }
    let leaf = Leaf(size: disk.size, type: disk.type)
    if let identity {
      leaves[path] = Checked(facts: leaf, files: [path], identities: [identity], confirmedAt: Self.now(), round: round)
    }
    return leaf
  }

  /// The paths of the chain from the disk at `path` (first) down to its base.
  func chainPaths(_ path: String) throws -> [String] {
    if let paths = confirmed(&chains, path) { return paths }
    let before = FileIdentity(path: path)
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    let paths = chain.paths
    // The parents' paths are known only now. The leaf's locators decide them, so the chain is kept
    // only when the leaf did not change while it was opened.
    let identities = paths.compactMap(FileIdentity.init(path:))
    if identities.count == paths.count, identities.first == before {
      chains[path] = Checked(facts: paths, files: paths, identities: identities, confirmedAt: Self.now(), round: round)
    }
    return paths
  }

  /// This process may have changed files (an engine call, a disk write): check before trusting.
  func mayHaveChanged() {
    round &+= 1
  }

  /// Drops what is known about `path` (after this process replaced or rewrote the file).
  func forget(_ path: String) {
    leaves[path] = nil
    chains[path] = nil
  }

  /// The cached facts for `path` if they still hold: confirmed recently in this round, or their
  /// files' identities unchanged now (which confirms them again).
  private func confirmed<Facts>(_ cache: inout [String: Checked<Facts>], _ path: String) -> Facts? {
    guard var entry = cache[path] else { return nil }
    let now = Self.now()
    if entry.round == round && now &- entry.confirmedAt < Self.recheckAfterNanoseconds { return entry.facts }
    guard entry.files.compactMap(FileIdentity.init(path:)) == entry.identities else { return nil }
    entry.confirmedAt = now
    entry.round = round
    cache[path] = entry
    return entry.facts
  }

  /// A monotonic clock in nanoseconds (clock_gettime through the vDSO: no system call).
  private static func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
  }
}
