import ArgumentParser
import Foundation
import LabKit
import VHD

struct DiskWrite: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "write",
    abstract: "Write a file's bytes into a disk at a byte offset (into the leaf of its chain).",
    discussion: """
      It refuses a disk that others read: a library's template (a file in its templates/ folder,
      which every linked clone reads) or a parent of differencing disks beside it; --force overrides.
      Example: vmlab disk write child.vhd --offset 1M --input patch.bin
      """
  )

  @Argument(help: "The VHD file to write to.")
  var path: String

  @Option(help: "Where in the disk to write: bytes, or with K, M, G (1M).")
  var offset: SizeArgument = SizeArgument(bytes: 0)

  @Option(help: "The file whose bytes are written.")
  var input: String

  @Flag(help: "Write even when other disks read this one (they change too).")
  var force = false

  func run() throws {
    if !force {
      let readers = try DiskReaders(of: path)
      if !readers.isEmpty { throw readers.refusal("write to") }
    }
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
