import ArgumentParser
import Foundation
import LabKit
import VHD

/// `vmlab vm write`: what a guest does to its disk, for the simulated host (only while the VM runs).
struct VMWrite: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "write", abstract: "Write a file's bytes into a running VM's disk, as its guest would.",
    discussion: "Example: vmlab vm write web01 --disk 1 --offset 1M --input data.bin")

  @Argument(help: "The VM.")
  var name: String

  @Option(help: "Which disk (1 is the first).")
  var disk = 1

  @Option(help: "Where: bytes, or with K, M, G.")
  var offset: SizeArgument = SizeArgument(bytes: 0)

  @Option(help: "The file whose bytes are written.")
  var input: String

  @OptionGroup var library: LibraryOptions

  func run() throws {
    try refuseCluster("vm write", vm: name)
    guard let data = FileManager.default.contents(atPath: input) else {
      throw ValidationError("cannot read --input \(input)")
    }
    try SimulatedGuest(library: library.open(), vm: name).write(disk: disk, offset: offset.bytes, bytes: [UInt8](data))
    print("wrote \(data.count) bytes to \(name) disk \(disk) at offset \(offset.bytes)")
  }
}

/// `vmlab vm read`: a VM's disk as it reads now (for the simulated host, like `vm write`).
struct VMRead: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "read", abstract: "Read bytes of a VM's disk (through its chain) into a file.")

  @Argument(help: "The VM.")
  var name: String

  @Option(help: "Which disk (1 is the first).")
  var disk = 1

  @Option(help: "Where: bytes, or with K, M, G.")
  var offset: SizeArgument = SizeArgument(bytes: 0)

  @Option(help: "How many bytes.")
  var length: SizeArgument

  @Option(help: "The file to write them to.")
  var output: String

  @OptionGroup var library: LibraryOptions

  func run() throws {
    try refuseCluster("vm read", vm: name)
    let guest = try SimulatedGuest(library: library.open(), vm: name)
    // Written beside the output and renamed over it when complete: a failed read leaves an existing
    // file as it was.
    let partial = URL(fileURLWithPath: output).deletingLastPathComponent()
      .appendingPathComponent(".\((output as NSString).lastPathComponent).vmlab-partial").path
    guard FileManager.default.createFile(atPath: partial, contents: nil),
      let handle = FileHandle(forWritingAtPath: partial)
    else {
      throw LabKitError(.failed, "cannot write --output \(output): check that its folder exists and is writable")
    }
    do {
      defer { try? handle.close() }
      try guest.read(disk: disk, offset: offset.bytes, length: length.bytes, to: handle)
    } catch {
      try? FileManager.default.removeItem(atPath: partial)
      throw error
    }
    if rename(partial, output) != 0 {
      let reason = String(cString: strerror(errno))
      try? FileManager.default.removeItem(atPath: partial)
      throw LabKitError(.failed, "cannot write --output \(output): \(reason)")
    }
    print("read \(length.bytes) bytes of \(name) disk \(disk) at offset \(offset.bytes) into \(absolutePath(output))")
  }
}
