import Foundation
import LabKit

/// Labs across the hosts of a cluster, for the command line and for scripts: create and look at
/// labs, and checkpoint or restore one on every host holding its VMs, all or nothing, as a
/// two-phase commit whose log is the cluster database (see `LabCoordinator`).
public final class ClusterLabs: Sendable {
  public let url: ClusterURL
  /// Who starts operations, as "busy" errors name them.
  public let who: String
  /// How long an operation's coordinator may be silent before the next command on the lab takes
  /// it for dead and finishes its operation.
  public let coordinatorSilence: Double
  /// How long a lost connection to the database is tried again before an operation gives up.
  public let reconnectSeconds: Double

  public init(url: ClusterURL, coordinatorSilence: Double = 5, reconnectSeconds: Double = 30) {
    self.url = url
    self.coordinatorSilence = coordinatorSilence
    self.reconnectSeconds = reconnectSeconds
    who = "\(ClusterURL.accountName())@\(ProcessInfo.processInfo.hostName) (pid \(getpid()))"
  }

  /// Creates the lab `name` of VMs placed on any hosts, or adds VMs to it with `add`.
  @discardableResult
  public func create(lab name: String, vms: [String], add: Bool = false) async throws -> ClusterLab {
    try await withDatabase { db in try await db.createLab(name, vms: vms, add: add) }
  }

  public func list() async throws -> [ClusterLab] {
    try await withDatabase { db in try await db.labs() }
  }

  /// The lab with its members (their hosts and whether those are alive) and its open operation.
  public func show(lab name: String) async throws -> ClusterLab {
    try await withDatabase { db in try await db.lab(named: name) }
  }

  /// Removes the lab; its VMs stay where they are.
  public func remove(lab name: String) async throws {
    try await withDatabase { db in try await db.removeLab(name) }
  }

  /// Checkpoint `name` of every VM of the lab on every host, all or nothing. Returns the operation
  /// as it ended (committed everywhere); throws `LabOperationFailure` otherwise.
  @discardableResult
  public func checkpoint(
    lab: String, name: String, description: String = "", disksOnly: Bool = false, timeout: Double = 300,
    progress: @escaping @Sendable (LabOperationStatus) -> Void = { _ in }
  ) async throws -> LabOperationStatus {
    do {
      try NameRules.validateCheckpoint(name)
    } catch let error as LabKitError {
      throw ClusterError(.usage, error.message)
    }
    let request = LabCoordinator.Request(
      lab: lab, kind: "checkpoint", checkpoint: name, description: description, disksOnly: disksOnly,
      timeout: timeout)
    return try await LabCoordinator(labs: self, request: request, progress: progress).run()
  }

  /// Every VM of the lab back to its checkpoint `checkpoint` (nil: each VM's most recent one) on
  /// every host, all or nothing.
  @discardableResult
  public func restore(
    lab: String, checkpoint: String?, timeout: Double = 300,
    progress: @escaping @Sendable (LabOperationStatus) -> Void = { _ in }
  ) async throws -> LabOperationStatus {
    if let checkpoint {
      do {
        try NameRules.validateCheckpoint(checkpoint)
      } catch let error as LabKitError {
        throw ClusterError(.usage, error.message)
      }
    }
    let request = LabCoordinator.Request(
      lab: lab, kind: "restore", checkpoint: checkpoint, description: "", disksOnly: false, timeout: timeout)
    return try await LabCoordinator(labs: self, request: request, progress: progress).run()
  }

  /// One connection for a short request.
  private func withDatabase<T: Sendable>(_ body: (ClusterDatabase) async throws -> T) async throws -> T {
    let db = try await ClusterDatabase.connect(url)
    do {
      try await db.migrate()
      let value = try await body(db)
      await db.close()
      return value
    } catch {
      await db.close()
      throw error
    }
  }
}

/// A lab operation that did not commit everywhere: why, and the operation as it stands (rolled
/// back everywhere, or decided with hosts that still owe the decision).
public struct LabOperationFailure: Error, CustomStringConvertible, Sendable {
  public let message: String
  public let operation: LabOperationStatus?

  public var description: String { message }
}
