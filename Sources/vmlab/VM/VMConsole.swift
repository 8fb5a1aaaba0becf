import ArgumentParser
import Foundation
import LabKit
import QEMUHost

/// `vm console NAME`: the serial console of a qemu VM, from its log in the VM folder (it outlives
/// the VM, so a guest that did not boot can be read afterwards); `--follow` prints what comes next.
struct VMConsole: ParsableCommand, NeedsHostFiles {
  static let configuration = CommandConfiguration(
    commandName: "console",
    abstract: "Print a qemu VM's serial console (--follow to keep printing, --attach to type into it).",
    discussion: """
      --attach joins your terminal to the console: keys go to the guest, Ctrl-] detaches and the
      VM keeps running. Without a terminal, standard input is sent and the answer printed.
      """)

  @Argument(help: "The VM.") var name: String

  @Option(help: "How many of the last lines to print.")
  var lines: Int = 50

  @Flag(help: "Keep printing what the guest writes until the VM stops or Ctrl-C.")
  var follow = false

  @Flag(help: "Type into the console (Ctrl-] detaches).")
  var attach = false

  @OptionGroup var library: LibraryOptions

  func validate() throws {
    guard lines >= 0 else { throw ValidationError("--lines takes 0 or more") }
    if attach && follow { throw ValidationError("give --attach or --follow, not both") }
  }

  func run() throws {
    try refuseCluster("vm console", vm: name)
    let library = try self.library.open()
    let vm = try library.vm(named: name)
    guard vm.host == "qemu" else {
      throw LabKitError(
        .invalidArgument, "VM '\(vm.name)' runs on the \(vm.host) host, which has no serial console; only qemu VMs do")
    }
    if attach {
      guard vm.state == .running else {
        throw LabKitError(.invalidState, "VM '\(vm.name)' is \(vm.state); start it to attach to its console")
      }
      // Other commands must work while the user types: the library is let go first.
      let folder = library.root + "/vms/" + vm.name
      try library.close()
      return try ConsoleAttachment.attach(vmFolder: folder)
    }
    let log = library.root + "/vms/" + vm.name + "/console.log"
    guard let handle = FileHandle(forReadingAtPath: log) else {
      throw LabKitError(.notFound, "VM '\(vm.name)' has no console log yet; start it with `vmlab vm start \(vm.name)`")
    }
    defer { try? handle.close() }
    print(Hosts.qemu.console(vm: vm.name, lines: lines))
    guard follow else { return }
    // Other commands must work while this one follows: the library is let go first.
    try library.close()
    var offset = try handle.seekToEnd()
    while true {
      try handle.seek(toOffset: offset)
      let data = handle.readDataToEndOfFile()
      if !data.isEmpty {
        FileHandle.standardOutput.write(data)
        offset += UInt64(data.count)
      } else if (try? Hosts.qemu.status(vm: vm.name)) == nil {
        return
      } else {
        usleep(200_000)
      }
    }
  }
}
