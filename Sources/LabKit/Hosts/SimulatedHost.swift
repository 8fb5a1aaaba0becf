import Foundation

/// A host that runs no guest code: it keeps each VM's power state and a small "memory" that stands
/// for the guest's running state, so that saving and resuming it can be checked.
public final class SimulatedHost: HostDriver, @unchecked Sendable {
  private let lock = NSLock()
  private var running: [String: [UInt8]] = [:]
  /// How long a guest takes to shut down, as a real one does (a lab's checkpoint waits for it).
  public let shutdownTime: TimeInterval

  public init() {
    shutdownTime = 0
  }

  public init(shutdownTime: TimeInterval) {
    self.shutdownTime = shutdownTime
  }

  /// The host the command line uses: `VMLAB_SIMULATED_SHUTDOWN_SECONDS` sets how long a guest takes
  /// to shut down (default 0), to see how long operations that stop VMs take, and that they overlap.
  public static func fromEnvironment() -> SimulatedHost {
    let seconds = ProcessInfo.processInfo.environment["VMLAB_SIMULATED_SHUTDOWN_SECONDS"].flatMap(Double.init)
    return SimulatedHost(shutdownTime: max(0, seconds ?? 0))
  }

  public func start(vm: String, disks: [String]) throws {
    lock.withLock { running[vm] = Array("booted \(vm) on \(disks.count) disks".utf8) }
  }

  public func shutDown(vm: String) throws {
    if shutdownTime > 0 { Thread.sleep(forTimeInterval: shutdownTime) }
    _ = lock.withLock { running.removeValue(forKey: vm) }
  }

  public func turnOff(vm: String) throws {
    _ = lock.withLock { running.removeValue(forKey: vm) }
  }

  public func saveState(vm: String) throws -> [UInt8] {
    lock.withLock { running.removeValue(forKey: vm) ?? Array("idle \(vm)".utf8) }
  }

  public func resume(vm: String, disks: [String], state: [UInt8]) throws {
    lock.withLock { running[vm] = state }
  }

  /// The simulated guest memory of a running VM.
  public func memory(of vm: String) -> [UInt8]? {
    lock.withLock { running[vm] }
  }
}
