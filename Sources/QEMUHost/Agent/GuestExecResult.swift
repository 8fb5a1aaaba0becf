import Foundation

/// What a program run in the guest through the agent (`guest-exec`) left behind.
public struct GuestExecResult: Equatable, Sendable {
  public var stdout: Data
  public var stderr: Data
  /// The exit code, or 128 + the signal number when a signal ended it (as a shell reports it).
  public var status: Int32
  /// The signal that ended it, if one did.
  public var signal: Int32?
  /// The agent keeps at most 16 MiB of each stream; true when it dropped the rest.
  public var truncated: Bool

  public init(stdout: Data, stderr: Data, status: Int32, signal: Int32? = nil, truncated: Bool = false) {
    self.stdout = stdout
    self.stderr = stderr
    self.status = status
    self.signal = signal
    self.truncated = truncated
  }

  public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
  public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}
