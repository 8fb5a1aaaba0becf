import VHD

/// What Disk properties read from VHD files (size, type, the chain's paths), kept per path with the
/// identity of every file they came from. A property read costs one stat(2) per file instead of
/// opening and validating the disk and its chain (25 µs against well under 1 µs); a file replaced
/// or rewritten since is read again.
final class DiskFacts {
  struct Leaf {
    let size: UInt64
    let type: DiskType
  }

  private var leaves: [String: (identity: FileIdentity, leaf: Leaf)] = [:]
  private var chains: [String: (identities: [FileIdentity], paths: [String])] = [:]

  /// The footer's facts of the disk at `path`.
  func leaf(_ path: String) throws -> Leaf {
    let identity = FileIdentity(path: path)
    if let identity, let cached = leaves[path], cached.identity == identity { return cached.leaf }
    // The identity is taken before reading, so a change made while reading shows at the next read.
    let disk = try VirtualDisk.open(path)
    defer { disk.close() }
    let leaf = Leaf(size: disk.size, type: disk.type)
    if let identity { leaves[path] = (identity, leaf) }
    return leaf
  }

  /// The paths of the chain from the disk at `path` (first) down to its base.
  func chainPaths(_ path: String) throws -> [String] {
    if let cached = chains[path], cached.paths.map(FileIdentity.init(path:)) == cached.identities {
      return cached.paths
    }
    let before = FileIdentity(path: path)
    let chain = try DiskChain.open(path)
    defer { chain.close() }
    let paths = chain.paths
    // The parents' paths are known only now. The leaf's locators decide them, so the chain is kept
    // only when the leaf did not change while it was opened.
    let identities = paths.compactMap(FileIdentity.init(path:))
    if identities.count == paths.count, identities.first == before { chains[path] = (identities, paths) }
    return paths
  }

  /// Drops what is known about `path` (after this process changed the file through the binding).
  func forget(_ path: String) {
    leaves[path] = nil
    chains[path] = nil
  }
}
