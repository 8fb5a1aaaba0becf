import Foundation

/// Conversions between VHDs and raw disk images (a plain file of the disk's bytes).
public enum RawImage {
  /// Creates a VHD at `path` holding the raw image's bytes. The disk's size is the raw file's size
  /// rounded up to a whole sector; zero regions (and holes) are not allocated in a dynamic disk.
  @discardableResult
  public static func importImage(
    from rawPath: String, to path: String, type: DiskType = .dynamic, progress: ProgressHandler? = nil
  ) throws -> VirtualDisk {
    let raw = try BlockFile(openingAt: absolutePath(rawPath), writable: false)
    defer { raw.close() }
    let size = (raw.size + 511) / 512 * 512
    guard size > 0 else {
      throw VHDError(path: raw.path, field: "file", .invalidArgument, "the raw image is empty")
    }
    let disk = try VirtualDisk.create(at: path, size: size, type: type)
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
        let count = Int(min(UInt64(chunk), size - position))
        let data = buffer.slice(0..<count)
        try raw.read(at: position, into: data)
        if !UnsafeRawBufferPointer(data).isAllZero {
          try chain.write(UnsafeRawBufferPointer(data), at: position)
          disk.startWriteback(block: Int(position / UInt64(chunk)))
        }
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
      // Blocks one layer holds whole are copied file to file in the kernel; blocks of zeros stay
      // holes; mixed blocks are read through the chain. Writeback starts block by block.
      try chain.copyBlocks(
        progress: progress,
        wholeLayer: { layer, offset, count, buffer in
          try chain.copyWhole(layer: layer, at: offset, count: count, into: raw, buffer: buffer)
          raw.startWriteback(at: offset, count: count)
        },
        { data, offset in
          try raw.write(data, at: offset)
          raw.startWriteback(at: offset, count: data.count)
        })
      try raw.synchronize()
    } catch {
      try? FileManager.default.removeItem(atPath: absolute)
      throw error
    }
  }
}
