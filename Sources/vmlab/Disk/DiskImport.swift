import ArgumentParser
import Foundation
import VHD

struct DiskImport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Make a VHD from a raw disk image; zero regions are not allocated in a dynamic disk.")

  @Argument(help: "The raw image to read.")
  var raw: String

  @Argument(help: "The new VHD file.")
  var path: String

  @Option(help: "dynamic or fixed.")
  var type: DiskType = .dynamic

  func run() throws {
    let bar = ProgressBar("importing")
    let disk = try RawImage.importImage(from: raw, to: path, type: type) { bar.update(done: $0, total: $1) }
    bar.finish()
    print("imported \(absolutePath(raw)) into \(disk.path) (\(disk.type), \(ByteCount.format(disk.size)))")
    let rawSize = (try? FileManager.default.attributesOfItem(atPath: raw)[.size] as? NSNumber)?.uint64Value
    if let rawSize, let note = sizeRoundingNote(requested: rawSize, actual: disk.size) {
      print("\(note); the tail reads as zeros")
    }
    disk.close()
  }
}
