import FuzzSupport
import VHD

/// A child and its parent: the input is `<child length, 4 bytes big-endian><child><parent>`, written as
/// `child.vhd` and `parent.vhd` in one scratch folder, then opened as a chain, read, and checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChain(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let input = UnsafeRawBufferPointer(start: data, count: size)
  guard size >= 4 else { return 0 }
  let declared = Int(input[0]) << 24 | Int(input[1]) << 16 | Int(input[2]) << 8 | Int(input[3])
  let childLength = min(declared, size - 4)
  let child = Scratch.write(UnsafeRawBufferPointer(rebasing: input[4..<(4 + childLength)]), to: "child.vhd")
  _ = Scratch.write(UnsafeRawBufferPointer(rebasing: input[(4 + childLength)...]), to: "parent.vhd")
  let options = OpenOptions(verifyChecksums: false, maximumDepth: 8, parentSearchRoot: Scratch.folder)
  if let chain = expectVHDError({ try DiskChain.open(child, options: options) }) {
    exercise(chain)
    chain.close()
  }
  if let chain = expectVHDError({ try DiskChain.open(child, options: OpenOptions(parentSearchRoot: Scratch.folder)) }) {
    chain.close()
  }
  _ = DiskCheck(path: child, options: options).isSound
  return 0
}

@main
enum Main {
  static func main() { runFuzzer(fuzzChain) }
}
