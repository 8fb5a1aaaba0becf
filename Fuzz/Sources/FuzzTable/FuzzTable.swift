import FuzzSupport
import VHD

/// The block allocation table and a sector bitmap from arbitrary bytes.
///
/// Input: two bytes of entry count (big-endian), then table bytes (which may be fewer than the count
/// needs: the decoder must refuse that cleanly). For the bitmap, the first byte picks a block size
/// from 512 bytes to 256 MiB; the bitmap is the input's bytes, as many as that block's bitmap takes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTable(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = FuzzSupport.bytes(data, size)
  guard bytes.count >= 2 else { return 0 }
  let count = Int(bytes[0]) << 8 | Int(bytes[1])
  let tableBytes = Array(bytes[2...])
  do {
    let table = try BlockAllocationTable(decoding: tableBytes, count: count)
    precondition(table.entries.count == count)
    let encoded = table.encoded()
    let again = try BlockAllocationTable(decoding: encoded, count: count)
    precondition(again == table, "table changed through encode and decode")
    _ = table.allocatedCount
    for block in 0..<count { _ = table.isAllocated(block) }
  } catch is VHDError {
  } catch {
    fatalError("not a VHDError: \(error)")
  }

  // A bitmap as VirtualDisk reads it: header.bitmapSize bytes for header.sectorsPerBlock sectors.
  let blockSize = 512 << Int(bytes[0] % 20)  // 512 bytes ... 256 MiB
  let sectors = blockSize / 512
  let bitmapSize = ((sectors + 7) / 8 + 511) / 512 * 512
  var bitmapBytes = Array(bytes.prefix(bitmapSize))
  bitmapBytes += [UInt8](repeating: 0, count: bitmapSize - bitmapBytes.count)
  var bitmap = SectorBitmap(bytes: bitmapBytes, sectorCount: sectors)
  _ = bitmap.isFull
  _ = bitmap.isEmpty
  let present = bitmap.presentCount
  // Runs over the whole block, and over a window the input chooses, must tile the range exactly and
  // agree with contains(_:).
  let start = Int(bytes[1]) * 37 % sectors
  let end = min(sectors, start + (bytes.count > 2 ? Int(bytes[2]) * 13 : 1) + 1)
  for range in [0..<min(sectors, 4096), start..<end] {
    var next = range.lowerBound
    var counted = 0
    for run in bitmap.runs(in: range) {
      precondition(run.sectors.lowerBound == next && !run.sectors.isEmpty, "runs do not tile the range")
      for sector in run.sectors {
        precondition(bitmap.contains(sector) == run.present, "a run disagrees with its bits")
      }
      if run.present { counted += run.sectors.count }
      next = run.sectors.upperBound
    }
    precondition(next == range.upperBound, "runs stop short of the range")
    if range == 0..<sectors { precondition(counted == present, "presentCount disagrees with the runs") }
  }
  bitmap.insert(start..<end)
  for sector in start..<end { precondition(bitmap.contains(sector), "insert left a sector clear") }
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzTable) }
}
