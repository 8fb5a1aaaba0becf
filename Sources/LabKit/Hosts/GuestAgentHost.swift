import Foundation

/// A host that reaches inside its running guests through an agent (the qemu guest agent): it runs
/// commands in them and knows when they are ready for it. The simulated host runs no guest and
/// offers none of this; `RunningGuest` is the way in, and says so for a VM of such a host.
public protocol GuestAgentHost: HostDriver {
  /// Runs a program inside the running guest of `vm` and waits for it to end (or the command's
  /// time limit to pass).
  func run(_ command: GuestCommand, in vm: HostedVM) throws -> GuestCommandResult
  /// Waits until the guest's agent answers, at most `timeout` seconds.
  func waitUntilReady(_ vm: HostedVM, timeout: Double) throws
  /// The last `lines` lines the guest wrote to its console (empty when it has none), to show why
  /// a guest is not ready.
  func recentConsole(of vm: HostedVM, lines: Int) -> String
  /// The accelerator the VM's guest runs on now (`kvm`, `tcg`), or nil when it does not run.
  func runningAccelerator(of vm: HostedVM) -> String?
}

/// A program to run inside a guest: its path, arguments and standard input, with a time limit.
public struct GuestCommand: Equatable, Sendable {
  public var path: String
  public var arguments: [String]
  public var input: Data?
  /// Seconds the program may run before vmlab stops waiting for it.
  public var timeout: Double

  public static let defaultTimeout: Double = 60

  public init(path: String, arguments: [String] = [], input: Data? = nil, timeout: Double = GuestCommand.defaultTimeout)
  {
    self.path = path
    self.arguments = arguments
    self.input = input
    self.timeout = timeout
  }

  /// A command line for the guest's shell (`/bin/sh -c LINE`).
  public static func shell(_ line: String, input: Data? = nil, timeout: Double = GuestCommand.defaultTimeout)
    -> GuestCommand
  {
    GuestCommand(path: "/bin/sh", arguments: ["-c", line], input: input, timeout: timeout)
  }

  /// The command as people read it, for messages.
  public var displayText: String {
    if path == "/bin/sh" && arguments.count == 2 && arguments[0] == "-c" { return arguments[1] }
    return ([path] + arguments).joined(separator: " ")
  }
}

/// What a program run inside a guest left: its output, its error output and its exit status (a
/// program killed by a signal has status 128 + the signal's number, as in a shell).
public struct GuestCommandResult: Equatable, Sendable {
  public var standardOutput: Data
  public var standardError: Data
  public var status: Int32

  public init(standardOutput: Data, standardError: Data, status: Int32) {
    self.standardOutput = standardOutput
    self.standardError = standardError
    self.status = status
  }
}
