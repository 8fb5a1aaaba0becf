import FuzzSupport
import VHD

/// A whole file: the input is written to a temporary file, opened strictly and leniently, read through
/// a chain (parents only inside the scratch folder) and checked with DiskCheck.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpen(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let path = Scratch.write(UnsafeRawBufferPointer(start: data, count: size), to: "disk.vhd")
  let options = OpenOptions(verifyChecksums: false, maximumDepth: 8, parentSearchRoot: Scratch.folder)
  if let disk = expectVHDError({ try VirtualDisk.open(path) }) { disk.close() }
  if let disk = expectVHDError({ try VirtualDisk.open(path, options: options) }) {
    for block in 0..<min(disk.blockCount, 64) where disk.isAllocated(block) {
      _ = expectVHDError { try disk.bitmap(of: block) }
    }
    _ = expectVHDError { try disk.allocatedBytes() }
    disk.close()
  }
  if let chain = expectVHDError({ try DiskChain.open(path, options: options) }) {
    exercise(chain)
    chain.close()
  }
  let check = DiskCheck(path: path, options: options)
  _ = check.isSound
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzOpen) }
}
