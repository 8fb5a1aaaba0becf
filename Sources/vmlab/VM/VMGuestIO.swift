import ArgumentParser
import Foundation
import LabKit

/// `vmlab vm write`: what a guest does to its disk, for the simulated host (only while the VM runs).
struct VMWrite: ParsableCommand {
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
    guard let data = FileManager.default.contents(atPath: input) else {
      throw ValidationError("cannot read --input \(input)")
    }
    try library.open().guestWrite(vm: name, disk: disk, offset: offset.bytes, bytes: [UInt8](data))
    print("wrote \(data.count) bytes to \(name) disk \(disk) at offset \(offset.bytes)")
  }
}

/// `vmlab vm read`: a VM's disk as it reads now.
struct VMRead: ParsableCommand {
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
    let bytes = try library.open().diskRead(vm: name, disk: disk, offset: offset.bytes, count: Int(length.bytes))
    guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
      throw ValidationError("cannot write --output \(output)")
    }
  }
}
