import Foundation

/// Conversions between VHDs and raw disk images (a plain file of the disk's bytes).
public enum RawImage {
  /// Creates a VHD at `path` holding the raw image's bytes. The disk's size is the raw file's size
  /// rounded up to a whole CHS geometry (`VirtualDisk.create`); the tail past the raw bytes reads as
  /// zeros.
  ///
  /// Zeros are never written: blocks of zeros (and holes) are not allocated in a dynamic disk, and
  /// inside a block that has data, only the 4 KiB pages that hold something are written, so runs of
  /// zero sectors stay holes of the VHD file and take no space (as qemu-img convert leaves them).
  /// The block's bitmap is all set, as for any dynamic block (VHD-FORMAT.md §8): a hole reads as
  /// the zeros it stands for.
  @discardableResult
  public static func importImage(
    from rawPath: String, to path: String, type: DiskType = .dynamic, progress: ProgressHandler? = nil
  ) throws -> VirtualDisk {
    let raw = try BlockFile(openingAt: absolutePath(rawPath), writable: false)
    defer { raw.close() }
    let rawSectors = (raw.size + 511) / 512 * 512
    guard rawSectors > 0 else {
      throw VHDError(path: raw.path, field: "file", .invalidArgument, "the raw image is empty")
    }
    let disk = try VirtualDisk.create(at: path, size: rawSectors, type: type)
    do {
      let chain = DiskChain(layers: [disk])
      let chunk = disk.blockSize
      let buffer = IOBuffer(count: chunk)
      var position: UInt64 = 0
      try progress?(0, raw.size)
      while position < raw.size {
        // Holes in a sparse raw file are skipped without reading them.
        guard let dataStart = raw.nextData(from: position) else { break }
        position = dataStart / UInt64(chunk) * UInt64(chunk)
        let count = Int(min(UInt64(chunk), rawSectors - position))
        let data = UnsafeRawBufferPointer(buffer.slice(0..<count))
        try raw.read(at: position, into: buffer.slice(0..<count))
        let ranges = data.nonZeroRanges(granularity: RawImage.pageSize)
        for range in ranges {
          try chain.write(UnsafeRawBufferPointer(rebasing: data[range]), at: position + UInt64(range.lowerBound))
        }
        if !ranges.isEmpty { disk.startWriteback(block: Int(position / UInt64(chunk))) }
        position += UInt64(count)
        try progress?(min(position, raw.size), raw.size)
      }
      try disk.synchronize()
      return disk
    } catch {
      disk.close()
      try? FileManager.default.removeItem(atPath: disk.path)
      throw error
    }
  }

  /// The unit in which imports look for zeros: a file system block, the smallest hole a file can have.
  static let pageSize = 4096

  /// Writes the chain's contents to a raw image at `rawPath` (a new file, or replacing one when
  /// `overwrite` is set). Zero blocks become holes.
  public static func exportImage(
    _ chain: DiskChain, to rawPath: String, overwrite: Bool = false, progress: ProgressHandler? = nil
  ) throws {
    let absolute = absolutePath(rawPath)
    let raw = try BlockFile(creatingAt: absolute, overwrite: overwrite)
    do {
      defer { raw.close() }
      try raw.resize(to: chain.size)
      // Blocks one layer holds whole, and each run of sectors of a mixed block, are copied file to
      // file in the kernel; zeros stay holes. Writeback starts block by block.
      try chain.copyBlocks(
        progress: progress,
        wholeLayer: { layer, offset, count, buffer in
          try chain.copyWhole(layer: layer, at: offset, count: count, into: raw, buffer: buffer)
        },
        blockDone: { offset, count in raw.startWriteback(at: offset, count: count) },
        { data, offset in try raw.write(data, at: offset) })
      try raw.synchronize()
    } catch {
      try? FileManager.default.removeItem(atPath: absolute)
      throw error
    }
  }
}
