/// What `vmlab disk info` shows of a disk and its chain.
public struct DiskInfo: Codable, Sendable, Equatable {
  public struct Layer: Codable, Sendable, Equatable {
    public var path: String
    public var type: DiskType
    public var uniqueID: UniqueID
    public var fileSize: UInt64
    /// Disk bytes this file holds (see `VirtualDisk.allocatedBytes()`).
    public var allocatedBytes: UInt64
  }

  public var path: String
  public var type: DiskType
  /// The disk's size as a VM sees it (the footer's current size).
  public var virtualSize: UInt64
  public var fileSize: UInt64
  public var allocatedBytes: UInt64
  public var blockSize: Int?
  public var uniqueID: UniqueID
  public var geometry: String
  /// The bytes the CHS geometry addresses; may be less than the virtual size.
  public var geometrySize: UInt64
  public var creator: String
  public var savedState: Bool
  /// Every disk from this one down to its base.
  public var chain: [Layer]

  public init(chain: DiskChain) throws {
    let leaf = chain.leaf
    path = leaf.path
    type = leaf.type
    virtualSize = leaf.size
    fileSize = leaf.fileSize
    allocatedBytes = try leaf.allocatedBytes()
    blockSize = leaf.header.map { Int($0.blockSize) }
    uniqueID = leaf.uniqueID
    geometry = leaf.footer.geometry.description
    geometrySize = leaf.footer.geometry.capacity
    creator = leaf.footer.creatorApplication
    savedState = leaf.footer.savedState
    self.chain = try chain.layers.map {
      Layer(
        path: $0.path, type: $0.type, uniqueID: $0.uniqueID, fileSize: $0.fileSize,
        allocatedBytes: try $0.allocatedBytes())
    }
  }
}
