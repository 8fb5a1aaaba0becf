/// What went wrong in cluster mode, said so that a user knows which object and what to do.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
  public enum Kind: Sendable {
    /// A `--cluster` URL, host name or other argument is wrong (exit 2 on the command line).
    case usage
    /// The database cannot be reached, refuses us, or holds something this vmlab cannot use.
    case database
    /// A name the cluster does not know (a host, a job).
    case notFound
    /// An agent's lease on a step was taken back: its writes for that step are refused.
    case staleFence
    /// Work across hosts that could not be done: no host has room, a step failed, a transfer broke.
    case failed
  }

  public let kind: Kind
  public let message: String

  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }

  /// How the hints that find no host say to start one: every option an agent is started with.
  public static let startAgent = "`vmlab agent --cluster URL --host-name NAME --library PATH`"
}
