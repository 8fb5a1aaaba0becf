/// Cylinders, heads and sectors per track, as the VHD specification's appendix computes them.
///
/// The geometry can cover fewer bytes than the disk's current size (a 4 MiB disk gets 4,177,920
/// bytes of CHS); vmlab, like Hyper-V and Windows, takes the current size as the disk's size.
public struct DiskGeometry: Equatable, Sendable, CustomStringConvertible {
  public var cylinders: UInt16
  public var heads: UInt8
  public var sectorsPerTrack: UInt8

  public init(cylinders: UInt16, heads: UInt8, sectorsPerTrack: UInt8) {
    self.cylinders = cylinders
    self.heads = heads
    self.sectorsPerTrack = sectorsPerTrack
  }

  /// The specification's algorithm for a disk of `size` bytes.
  public init(forSize size: UInt64) {
    var totalSectors = size / 512
    totalSectors = min(totalSectors, 65535 * 16 * 255)
    var sectorsPerTrack: UInt64
    var heads: UInt64
    var cylinderTimesHeads: UInt64
    if totalSectors >= 65535 * 16 * 63 {
      sectorsPerTrack = 255
      heads = 16
      cylinderTimesHeads = totalSectors / sectorsPerTrack
    } else {
      sectorsPerTrack = 17
      cylinderTimesHeads = totalSectors / sectorsPerTrack
      heads = max(4, (cylinderTimesHeads + 1023) / 1024)
      if cylinderTimesHeads >= heads * 1024 || heads > 16 {
        sectorsPerTrack = 31
        heads = 16
        cylinderTimesHeads = totalSectors / sectorsPerTrack
      }
      if cylinderTimesHeads >= heads * 1024 {
        sectorsPerTrack = 63
        heads = 16
        cylinderTimesHeads = totalSectors / sectorsPerTrack
      }
    }
    self.init(
      cylinders: UInt16(cylinderTimesHeads / heads), heads: UInt8(heads), sectorsPerTrack: UInt8(sectorsPerTrack))
  }

  /// The bytes the geometry addresses.
  public var capacity: UInt64 {
    UInt64(cylinders) * UInt64(heads) * UInt64(sectorsPerTrack) * 512
  }

  public var description: String { "\(cylinders)/\(heads)/\(sectorsPerTrack)" }
}
