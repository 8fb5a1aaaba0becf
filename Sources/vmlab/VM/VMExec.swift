import ArgumentParser
import Foundation
import LabKit

/// `vmlab vm exec`: runs a program inside a running guest through its agent. The program's output
/// and error output pass through; vmlab exits with the program's status.
struct VMExec: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "exec", abstract: "Run a program inside a running VM's guest (through its guest agent).",
    discussion: """
      The program's output and error output pass through, and vmlab exits with its exit status.
      Put the program after --, so that its own options are not taken for vmlab's.
      Example: vmlab vm exec web01 -- sh -c 'echo hello > /root/a.txt'

      Works with --cluster URL (or VMLAB_CLUSTER): the VM's host's agent runs the program in the
      guest and hands back its output when it ends.
      """)

  @Argument(help: "The VM.")
  var name: String

  @Option(help: "Seconds the program may run before vmlab stops waiting for it.")
  var timeout: Double = GuestCommand.defaultTimeout

  @Flag(help: "Pass vmlab's standard input to the program.")
  var stdin = false

  @Argument(parsing: .postTerminator, help: "The program and its arguments (after --).")
  var command: [String] = []

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func validate() throws {
    guard !command.isEmpty else {
      throw ValidationError("give the program to run after --, for example: vmlab vm exec \(name) -- uname -a")
    }
    guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds; got \(timeout)") }
  }

  func run() throws {
    if cluster.isSet {
      let input = stdin ? FileHandle.standardInput.readDataToEndOfFile() : nil
      return try ClusterVMCommands(cluster: cluster).exec(
        name, GuestCommand(path: command[0], arguments: Array(command.dropFirst()), input: input, timeout: timeout))
    }
    // The library is let go before the program runs: a long command holds no lock.
    let opened = try library.open()
    let guest = try RunningGuest(library: opened, vm: name)
    try opened.close()
    let input = stdin ? FileHandle.standardInput.readDataToEndOfFile() : nil
    let result = try guest.run(
      GuestCommand(path: command[0], arguments: Array(command.dropFirst()), input: input, timeout: timeout))
    FileHandle.standardOutput.write(result.standardOutput)
    FileHandle.standardError.write(result.standardError)
    if result.status != 0 { throw ExitCode(result.status) }
  }
}
