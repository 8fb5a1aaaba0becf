/// An engine error: which object, what is wrong, and what to do about it.
public struct LabKitError: Error, Equatable, CustomStringConvertible, Sendable {
  public enum Kind: String, Equatable, Sendable, Codable {
    case notFound
    case alreadyExists
    case invalidName
    case invalidArgument
    case invalidState
    case conflict
    case busy
    case inconsistent
    case failed
    /// A change of several VMs the caller did not confirm (`BulkChange`): nothing was done. A
    /// usage mistake, not a failure.
    case unconfirmedBulkChange
    /// The operation was committed (a checkpoint taken, a VM restored), but the host failed
    /// afterwards, so a VM did not start again; the message says which and how to start it.
    case hostFailedAfterCommit
  }

  public var kind: Kind
  public var message: String

  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }

  static func notFound(_ what: String, _ name: String, hint: String) -> LabKitError {
    LabKitError(.notFound, "\(what) '\(name)' not found; \(hint)")
  }
}
