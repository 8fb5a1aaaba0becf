import Foundation

/// What a destructive operation will do, returned by a dry run and by the operation itself.
public struct OperationPlan: Codable, Equatable, Sendable {
  public var operation: String
  public var vm: String
  /// Checkpoints that disappear.
  public var checkpointsRemoved: [String]
  /// Checkpoints that go along with the one named (later ones on the same line).
  public var alsoAffected: [String]
  /// Files deleted.
  public var filesRemoved: [String]
  /// Files created.
  public var filesCreated: [String]
  /// Bytes of disk data copied into another file.
  public var bytesMerged: UInt64
  /// Power: what happens to a running VM.
  public var powerAction: PowerAction
  public var applied: Bool
}
