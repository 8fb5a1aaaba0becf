import ArgumentParser
import Foundation
import VHD

struct DiskWrite: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "write",
    abstract: "Write a file's bytes into a disk at a byte offset (into the leaf of its chain).",
    discussion: """
      Example: vmlab disk write child.vhd --offset 1M --input patch.bin
      """
  )

  @Argument(help: "The VHD file to write to.")
  var path: String

  @Option(help: "Where in the disk to write: bytes, or with K, M, G (1M).")
  var offset: SizeArgument = SizeArgument(bytes: 0)

  @Option(help: "The file whose bytes are written.")
  var input: String

  func run() throws {
    let chain = try DiskChain.open(path, writable: true)
    defer { chain.close() }
    guard let handle = FileHandle(forReadingAtPath: input) else {
      throw ValidationError("cannot read --input \(input)")
    }
    defer { try? handle.close() }
    let chunk = 8 << 20
    var position = offset.bytes
    var written: UInt64 = 0
    while let data = try handle.read(upToCount: chunk), !data.isEmpty {
      try data.withUnsafeBytes { try chain.write($0, at: position) }
      position += UInt64(data.count)
      written += UInt64(data.count)
    }
    try chain.synchronize()
    print("wrote \(ByteCount.format(written)) to \(chain.leaf.path) at offset \(offset.bytes)")
  }
}
