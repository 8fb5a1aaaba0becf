import Foundation

/// What a merge did, or would do.
public struct MergeReport: Sendable, Codable, Equatable {
  /// The differencing disk whose contents were folded into its parent.
  public var child: String
  /// The disk that now holds them.
  public var parent: String
  /// Bytes of data copied from the child into the parent.
  public var bytesMerged: UInt64
  /// Whether the child file was removed afterwards.
  public var childRemoved: Bool
}

extension DiskChain {
  /// Folds a differencing disk into its parent (a commit): every sector the child holds is copied
  /// into the parent, the parent is flushed, and only then is the child removed.
  ///
  /// Copying does not change what the chain reads (the child still masks those sectors), so a merge
  /// stopped at any point leaves the chain unchanged and can simply run again (DESIGN.md rule 2).
  /// The parent is modified in place: the caller makes sure no other disk depends on it
  /// (see `otherChildren(ofParentOf:)`).
  @discardableResult
  public static func merge(
    child childPath: String, removeChild: Bool = true, options: OpenOptions = OpenOptions(),
    progress: ProgressHandler? = nil
  ) throws -> MergeReport {
    let chain = try DiskChain.open(childPath, options: options)
    defer { chain.close() }
    let child = chain.leaf
    guard child.type == .differencing, chain.layers.count > 1 else {
      throw VHDError(
        path: child.path, field: "footer.diskType", .invalidArgument,
        "is a \(child.type) disk; only a differencing disk can be merged into its parent")
    }
    let parentChain = try DiskChain.open(chain.layers[1].path, writable: true, options: options)
    defer { parentChain.close() }
    guard parentChain.leaf.uniqueID == chain.layers[1].uniqueID else {
      throw VHDError(path: chain.layers[1].path, field: "footer.uniqueID", .parentMismatch, "changed while merging")
    }

    let blocks = (0..<child.blockCount).filter { child.isAllocated($0) }
    let total = try child.allocatedBytes()
    try progress?(0, total)
    // Whole child blocks over parent blocks that can be overwritten in place need no metadata work:
    // they are copied file to file. The rest (partial bitmaps, blocks the parent must allocate,
    // differencing parents) go through the chain.
    let target = parentChain.leaf
    var direct: [(block: Int, destination: UInt64)] = []
    var general: [Int] = []
    for block in blocks {
      if target.blockSize == child.blockSize, try child.bitmap(of: block).isFull,
        let destination = target.inPlaceDataOffset(block: block)
      {
        direct.append((block, destination))
      } else {
        general.append(block)
      }
    }
    var merged: UInt64 = 0
    let buffer = IOBuffer(count: child.blockSize)
    for block in general {
      merged += try parentChain.copyPresentSectors(of: child, block: block, buffer: buffer)
      try progress?(merged, total)
    }
    // Whole blocks copy inside the kernel, file to file. When the child goes away afterwards, a
    // second core frees its cached pages behind the copy, so that removing it is quick.
    let evictor = DispatchQueue(label: "vmlab.merge.evict")
    let shared = UncheckedSendable(child)
    for (block, destination) in direct {
      let count = Int(child.blockRange(block).count)
      try target.copyData(from: child, block: block, count: count, to: destination, buffer: buffer)
      if removeChild { evictor.async { shared.value.dropCachedData(block: block, count: count) } }
      merged += UInt64(count)
      try progress?(merged, total)
    }
    evictor.sync {}
    try parentChain.synchronize()
    if removeChild {
      child.close()
      try FileManager.default.removeItem(atPath: child.path)
    }
    return MergeReport(child: child.path, parent: parentChain.leaf.path, bytesMerged: merged, childRemoved: removeChild)
  }

  /// Differencing disks in the parent's folder, other than `childPath`, that name the same parent:
  /// merging into a parent they read would change their contents.
  public static func otherChildren(ofParentOf childPath: String, options: OpenOptions = OpenOptions()) throws
    -> [String]
  {
    let chain = try DiskChain.open(childPath, options: options)
    defer { chain.close() }
    guard chain.layers.count > 1 else { return [] }
    return children(of: chain.layers[1]).filter { $0 != chain.leaf.path }
  }

  /// Differencing disks in the folder of the disk at `path` whose header names it as their parent:
  /// writing into that disk would change what they read.
  public static func children(ofDiskAt path: String, options: OpenOptions = OpenOptions()) throws -> [String] {
    let disk = try VirtualDisk.open(path, options: options)
    defer { disk.close() }
    return children(of: disk)
  }

  /// Differencing disks in `parent`'s folder whose header names `parent`'s unique id.
  static func children(of parent: VirtualDisk) -> [String] {
    let folder = (parent.path as NSString).deletingLastPathComponent
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.sorted().compactMap { name -> String? in
      let path = folder + "/" + name
      guard path != parent.path, let disk = try? VirtualDisk.open(path, options: OpenOptions(verifyChecksums: false))
      else { return nil }
      defer { disk.close() }
      return disk.header?.parentUniqueID == parent.uniqueID && disk.type == .differencing ? path : nil
    }
  }
}

/// A value handed to another thread whose safety the caller guarantees (here: a disk used only for
/// cache advice, which touches no state of the object).
private struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
