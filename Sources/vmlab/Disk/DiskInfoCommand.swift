import ArgumentParser
import VHD

struct DiskInfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Show a disk's type, sizes and parent chain.")

  @Argument(help: "The VHD file.")
  var path: String

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var read: ReadOptions

  func run() throws {
    let chain = try DiskChain.open(path, options: read.openOptions)
    defer { chain.close() }
    let info = try DiskInfo(chain: chain)
    if json {
      try printJSON(info)
      return
    }
    print("path:            \(info.path)")
    print("type:            \(info.type)")
    print("virtual size:    \(ByteCount.format(info.virtualSize)) (\(info.virtualSize) bytes)")
    print("file size:       \(ByteCount.format(info.fileSize)) (\(info.fileSize) bytes)")
    print("allocated:       \(ByteCount.format(info.allocatedBytes)) (\(info.allocatedBytes) bytes)")
    if let blockSize = info.blockSize { print("block size:      \(ByteCount.format(UInt64(blockSize)))") }
    print("unique id:       \(info.uniqueID)")
    print("geometry (CHS):  \(info.geometry) (\(info.geometrySize) bytes)")
    print("creator:         \(info.creator)")
    if info.savedState { print("saved state:     yes") }
    if info.chain.count > 1 {
      print("chain (leaf first):")
      for (depth, layer) in info.chain.enumerated() {
        print("  \(depth). \(layer.path) (\(layer.type), \(ByteCount.format(layer.allocatedBytes)))")
      }
    }
  }
}
