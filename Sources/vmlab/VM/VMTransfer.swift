import ArgumentParser
import Cluster
import Foundation
import LabKit

extension UndoDiskChoice: ExpressibleByArgument {}

struct VMImport: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "import", abstract: "Import a VM from a folder of VHD files written elsewhere.",
    discussion: """
      Each chain in the folder (a disk and its parents) becomes one of the VM's disks, copied into the
      library. Differencing disks are kept as plain chains, not taken for checkpoints. Virtual Server
      undo disks (.vud) need --undo-disks discard or --undo-disks merge.
      """)

  @Argument(help: "The new VM's name.")
  var name: String

  @Option(help: "The folder to import from.")
  var from: String

  @Option(help: "discard or merge the folder's undo disks (.vud).")
  var undoDisks: UndoDiskChoice?

  @Flag(help: "Follow parent locators that lead outside the folder.")
  var allowParentsOutside = false

  @Flag(help: "The guest has additions installed.")
  var additions = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    if LeadingOptions.current.cluster != nil {
      throw ClusterError(
        .usage,
        "vm import is not available with --cluster: it copies VHD files of this machine into a library; run it on the host that is to hold the VM with vmlab --library PATH (that host's agent places the VM in the cluster when it next reconciles)"
      )
    }
    let vm = try library.open().importVM(
      name: name, from: from, undoDisks: undoDisks, additions: additions, allowParentsOutside: allowParentsOutside)
    print("imported VM \(vm.name) with \(vm.disks.count) disk\(vm.disks.count == 1 ? "" : "s")")
  }
}

struct VMExport: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "export", abstract: "Export a VM's disks to a folder, with their chains or flattened.")

  @Argument(help: "The VM.")
  var name: String

  @Argument(help: "The folder to write to.")
  var folder: String

  @Flag(help: "One standalone VHD per disk instead of the chain files.")
  var flatten = false

  @OptionGroup var library: LibraryOptions

  func run() throws {
    try refuseCluster("vm export", vm: name)
    let files = try library.open().exportVM(name, to: folder, flatten: flatten)
    files.forEach { print($0) }
  }
}
