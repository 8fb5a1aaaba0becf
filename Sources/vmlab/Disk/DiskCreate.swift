import ArgumentParser
import VHD

struct DiskCreate: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "create",
    abstract: "Create a dynamic or fixed disk, or a differencing disk over a parent.",
    discussion: """
      Examples:
        vmlab disk create base.vhd --size 8G
        vmlab disk create data.vhd --size 512M --type fixed
        vmlab disk create child.vhd --parent base.vhd
      """
  )

  @Argument(help: "The new VHD file.")
  var path: String

  @Option(
    help: """
      The disk's size: bytes, or a number with K, M, G or T (512M, 4G); rounded up to a whole CHS \
      geometry (at most 8,160 bytes more) up to 127 GiB, so every tool sees the same size.
      """)
  var size: SizeArgument?

  @Option(help: "dynamic (grows as written) or fixed (all space up front).")
  var type: DiskType = .dynamic

  @Option(help: "Make a differencing disk over this parent instead; it takes the parent's size.")
  var parent: String?

  func validate() throws {
    if parent == nil && size == nil {
      throw ValidationError("give --size for a new disk, or --parent for a differencing disk")
    }
    if parent != nil && size != nil {
      throw ValidationError("a differencing disk takes its parent's size: give --size or --parent, not both")
    }
  }

  func run() throws {
    let disk: VirtualDisk
    if let parent {
      disk = try VirtualDisk.createDifferencing(at: path, parent: parent)
      print("created differencing disk \(disk.path) over \(absolutePath(parent)) (\(ByteCount.format(disk.size)))")
    } else {
      disk = try VirtualDisk.create(at: path, size: size!.bytes, type: type)
      print("created \(disk.type) disk \(disk.path) (\(ByteCount.format(disk.size)))")
      if let note = sizeRoundingNote(requested: size!.bytes, actual: disk.size) { print(note) }
    }
    disk.close()
  }
}
