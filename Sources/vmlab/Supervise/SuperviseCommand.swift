import ArgumentParser
import Foundation
import QEMUHost

/// `vmlab supervise VM-FOLDER`: the process that runs one qemu VM, started by the QEMU host in a
/// session of its own (never by people, so it is hidden from help).
struct SuperviseCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "supervise", abstract: "Run one qemu VM's supervisor (started by vmlab itself).",
    shouldDisplay: false)

  @Argument(help: "The VM's folder in the library.")
  var vmFolder: String

  func run() throws {
    Foundation.exit(Supervisor.run(vmFolder: vmFolder))
  }
}
