/// Cylinders, heads and sectors per track, as the VHD specification's appendix computes them.
///
/// The geometry can cover fewer bytes than the disk's current size (a 4 MiB disk gets 4,177,920
/// bytes of CHS); vmlab, like Hyper-V and Windows, takes the current size as the disk's size. The
/// disks vmlab creates avoid that disagreement: `rounding(size:)` gives them a size their geometry
/// covers exactly, as Virtual PC and qemu-img do.
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

  /// The largest geometry, 65535/16/255 (about 127.5 GiB). qemu and Virtual PC size a disk that
  /// carries it by its footer's current size, not by its CHS.
  public static let maximum = DiskGeometry(cylinders: 65535, heads: 16, sectorsPerTrack: 255)

  /// The size a new disk of `size` bytes gets, rounded up (never down) to a whole CHS geometry, and
  /// that geometry: qemu's `vpc_create` loop, which tries the specification's algorithm on one more
  /// sector at a time until the geometry covers the request. Readers that size a VHD by its CHS
  /// (qemu for any creator it does not know, Virtual PC) then agree with those that take the
  /// current size (Hyper-V, Windows, VirtualBox). A size the loop can only cover with the maximum
  /// geometry stays as requested (`size` must be a multiple of 512).
  public static func rounding(size: UInt64) -> (geometry: DiskGeometry, size: UInt64) {
    let requested = size / 512
    let maximumSectors = maximum.capacity / 512
    guard requested < maximumSectors else { return (maximum, size) }
    var extra: UInt64 = 0
    var geometry = DiskGeometry(forSize: size)
    // Each step raises the cylinder count by at most one, so the loop ends within a cylinder's
    // worth of sectors (at most 16 × 255).
    while geometry.capacity / 512 < requested {
      extra += 1
      geometry = DiskGeometry(forSize: (requested + extra) * 512)
    }
    return geometry == maximum ? (geometry, size) : (geometry, geometry.capacity)
  }

  /// The geometry a footer records for a disk of `size` bytes: the one `rounding(size:)` gives when
  /// the size is already a whole geometry (or needs the maximum), else the specification's, which
  /// covers less than the size (disks made before vmlab rounded, and differencing disks over them).
  public static func recorded(forSize size: UInt64) -> DiskGeometry {
    let rounded = rounding(size: size)
    return rounded.size == size ? rounded.geometry : DiskGeometry(forSize: size)
  }

  /// The bytes the geometry addresses.
  public var capacity: UInt64 {
    UInt64(cylinders) * UInt64(heads) * UInt64(sectorsPerTrack) * 512
  }

  public var description: String { "\(cylinders)/\(heads)/\(sectorsPerTrack)" }
}
