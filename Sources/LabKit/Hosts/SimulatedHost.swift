import Foundation

/// A host that runs no guest code: it keeps each VM's power state and a small "memory" that stands
/// for the guest's running state, so that saving and resuming it can be checked. It knows only the
/// VMs this process started, so of any other VM it says `unknown` and the catalog stays the truth.
public final class SimulatedHost: SimulatingHost, @unchecked Sendable {
  private let lock = NSLock()
  private var running: [String: [UInt8]] = [:]
  private var frozen: Set<String> = []
  /// How long a guest takes to shut down, as a real one does (a lab's checkpoint waits for it).
  public let shutdownTime: TimeInterval

  public var capabilities: HostCapabilities { .all }

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

  public func start(_ vm: HostedVM) throws {
    lock.withLock { running[vm.name] = Array("booted \(vm.name) on \(vm.disks.count) disks".utf8) }
  }

  public func shutDown(vm: String) throws {
    if shutdownTime > 0 { Thread.sleep(forTimeInterval: shutdownTime) }
    _ = lock.withLock { running.removeValue(forKey: vm) }
  }

  public func turnOff(vm: String) throws {
    _ = lock.withLock { running.removeValue(forKey: vm) }
  }

  public func saveState(vm: String, to file: String) throws {
    // A VM another process started has no memory here; it saves as idle.
    let memory = lock.withLock { running.removeValue(forKey: vm) } ?? Array("idle \(vm)".utf8)
    guard FileManager.default.createFile(atPath: file, contents: Data(memory)) else {
      throw LabKitError(.failed, "cannot write the saved state of VM '\(vm)' to \(file)")
    }
  }

  public func resume(_ vm: HostedVM, from file: String) throws {
    guard let memory = FileManager.default.contents(atPath: file) else {
      throw LabKitError(.failed, "cannot read the saved state of VM '\(vm.name)' from \(file)")
    }
    lock.withLock { running[vm.name] = [UInt8](memory) }
  }

  public func powerState(of vm: String) throws -> HostPowerState {
    lock.withLock { running[vm] == nil ? .unknown : .running }
  }

  public func freezeFileSystems(vm: String) throws {
    _ = lock.withLock { frozen.insert(vm) }
  }

  public func thawFileSystems(vm: String) throws {
    _ = lock.withLock { frozen.remove(vm) }
  }

  /// The simulated guest memory of a running VM.
  public func memory(of vm: String) -> [UInt8]? {
    lock.withLock { running[vm] }
  }

  /// Whether the VM's file systems are frozen now.
  public func isFrozen(_ vm: String) -> Bool {
    lock.withLock { frozen.contains(vm) }
  }
}
