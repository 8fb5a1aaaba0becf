import ArgumentParser
import VHD

struct DiskExport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a disk's contents, read through its chain, to a raw image.")

  @Argument(help: "The VHD file (the leaf of a chain).")
  var path: String

  @Argument(help: "The raw image to write.")
  var raw: String

  @Flag(help: "Replace the raw image if it exists.")
  var force = false

  @OptionGroup var read: ReadOptions

  func run() throws {
    let chain = try DiskChain.open(path, options: read.openOptions)
    defer { chain.close() }
    let bar = ProgressBar("exporting")
    try RawImage.exportImage(chain, to: raw, overwrite: force) { bar.update(done: $0, total: $1) }
    bar.finish()
    print("exported \(chain.leaf.path) to \(absolutePath(raw)) (\(ByteCount.format(chain.size)))")
  }
}
