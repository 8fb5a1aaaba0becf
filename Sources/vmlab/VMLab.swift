import ArgumentParser
import Cluster
import Foundation
import LabKit

/// The `vmlab` command: virtual machines, VHD disks and checkpoints for training labs.
struct VMLab: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vmlab",
    abstract: "Virtual machines, VHD disks and VM checkpoints for training labs, scripted in Lua.",
    discussion: """
      --library DIR and --wait may come before the command too (vmlab --library ~/labs vm list).
      Many hosts: vmlab --cluster URL host list | job list | vm create|list|show|start|save|shutdown|turn-off|remove|exec | checkpoint new|list|restore|merge|remove | lab … | image build|list | run | repl, and vmlab agent on each host.
      Exit codes: 0 success, 1 an operation failed, 2 a usage error.
      """,
    version: "0.1.0",
    subcommands: [
      VMCommand.self, CheckpointCommand.self, LabCommand.self, JobCommand.self, LibraryCommand.self, DiskCommand.self,
      ImageCommand.self, HostCommand.self, RunCommand.self, ReplCommand.self, AgentCommand.self,
      SuperviseCommand.self,
    ]
  )
}

@main
enum Main {
  static func main() {
    let arguments: [String]
    let leading: LeadingOptions
    do {
      (leading, arguments) = try LeadingOptions.split(Array(CommandLine.arguments.dropFirst()))
    } catch {
      exit(with: error)
    }
    beginEarlyConnection(leading, arguments)
    if let mistake = UsageErrors.checkShortOptionGroups(arguments) {
      FileHandle.standardError.write(Data("Error: \(mistake.message)\nSee 'vmlab --help'.\n".utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    }
    var command: ParsableCommand
    do {
      command = try FastParse.command(arguments) ?? VMLab.parseAsRoot(arguments)
    } catch {
      exit(with: error)
    }
    // `vmlab --cluster URL` alone, or asking for help, prints the help: it says what works across hosts.
    if leading.cluster != nil && !(command is ClusterAware) && !(command is NeedsHostFiles) && !(command is VMLab)
      && !asksForHelp(arguments)
    {
      // Working on the local library instead would mislead: the user asked for the cluster.
      // (A command that needs a host's files refuses itself, naming the host to run it on.)
      let usage = ValidationError(
        "--cluster: this command does not work across hosts yet (in cluster mode: \(clusterCommands)); drop --cluster to use the local library"
      )
      FileHandle.standardError.write(Data((UsageErrors.message(usage, in: command) + "\n").utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    }
    do {
      try LeadingOptions.$current.withValue(leading) { try command.run() }
    } catch let error as ValidationError {
      FileHandle.standardError.write(Data((UsageErrors.message(error, in: command) + "\n").utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    } catch let error as LabKitError where error.kind == .unconfirmedBulkChange {
      // The engine's rule for changing several VMs, refused as the command line's own usage errors are.
      let usage = ValidationError(error.message)
      FileHandle.standardError.write(Data((UsageErrors.message(usage, in: command) + "\n").utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    } catch let error as ClusterError where error.kind == .usage {
      let usage = ValidationError(error.message)
      FileHandle.standardError.write(Data((UsageErrors.message(usage, in: command) + "\n").utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    } catch let error as LabKitError where error.kind == .notFound && !(command is ClusterAware) && clusterIsSet {
      // The user works with a cluster, but this command reads only this machine's library.
      FileHandle.standardError.write(
        Data(
          ("vmlab: error: \(error.message)\nnote: VMLAB_CLUSTER is set, but this command works on this machine's library only (it needs the VM's files); `vmlab vm list --cluster` shows which host holds each VM: run the command there with vmlab --library PATH. These work across hosts: \(clusterCommands)\n")
            .utf8))
      Foundation.exit(ExitCode.failure.rawValue)
    } catch {
      exit(with: error)
    }
  }

  /// Starts connecting to the cluster database while the command line is parsed (see
  /// `EarlyConnection`), for a command given a cluster that may work across hosts; not for help,
  /// the version, or the commands that only ever read this machine's files.
  private static func beginEarlyConnection(_ leading: LeadingOptions, _ arguments: [String]) {
    guard let text = leading.cluster ?? ClusterOptions.fromEnvironment, let first = arguments.first,
      !["disk", "library", "supervise"].contains(first), !asksForHelp(arguments),
      !arguments.contains(where: { ["-h", "--version", "--experimental-dump-help"].contains($0) })
    else { return }
    EarlyConnection.begin(text)
  }

  /// The commands that work across hosts, for the messages of those that do not.
  static let clusterCommands =
    "host list, job list, vm create|list|show|start|save|shutdown|turn-off|remove|exec, checkpoint new|list|restore|merge|remove, image build|list, lab create|list|show|checkpoint|restore|remove, run, repl, agent"

  /// Whether `VMLAB_CLUSTER` names a cluster (read by the commands that work across hosts).
  static var clusterIsSet: Bool { ClusterOptions.fromEnvironment != nil }

  /// `vmlab help …` or `--help` anywhere.
  private static func asksForHelp(_ arguments: [String]) -> Bool {
    arguments.first == "help" || arguments.contains("--help")
  }

  /// Help and version exit 0; argument errors 2; failed operations 1, with the message on stderr.
  static func exit(with error: Error) -> Never {
    let code = VMLab.exitCode(for: error)
    if code == .validationFailure {
      FileHandle.standardError.write(Data((VMLab.fullMessage(for: error) + "\n").utf8))
      Foundation.exit(ExitCode.usage.rawValue)
    }
    if code.isSuccess || error is ExitCode {
      VMLab.exit(withError: error)
    }
    // Foundation's file errors read as sentences naming the file, not as NSCocoaErrorDomain codes.
    FileHandle.standardError.write(Data("vmlab: error: \(describeFileError(error))\n".utf8))
    Foundation.exit(ExitCode.failure.rawValue)
  }
}

extension ExitCode {
  /// A usage error: wrong arguments or options.
  static let usage = ExitCode(2)
}
