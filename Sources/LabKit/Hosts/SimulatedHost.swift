import Foundation

/// A host that runs no guest code: it keeps each VM's power state and a small "memory" that stands
/// for the guest's running state, so that saving and resuming it can be checked. It knows only the
/// VMs this process started, so of any other VM it says `unknown` and the catalog stays the truth.
public final class SimulatedHost: SimulatingHost, @unchecked Sendable {
  private let lock = NSLock()
  private var running: [String: [UInt8]] = [:]
  private var frozen: Set<String> = []
  private var paused: Set<String> = []
  private var disks: [String: [String]] = [:]
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
    lock.withLock { stopRunning(vm) }
  }

  public func turnOff(vm: String) throws {
    lock.withLock { stopRunning(vm) }
  }

  public func saveMemoryAndStop(vm: String, to file: String) throws {
    // A VM another process started has no memory here; it saves as idle.
    let memory = lock.withLock { stopRunning(vm) } ?? Array("idle \(vm)".utf8)
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
    lock.withLock { running[vm] == nil ? .unknown : paused.contains(vm) ? .paused : .running }
  }

  public func freezeFileSystems(vm: String) throws {
    _ = lock.withLock { frozen.insert(vm) }
  }

  public func thawFileSystems(vm: String) throws {
    _ = lock.withLock { frozen.remove(vm) }
  }

  public func pause(vm: String) throws {
    _ = lock.withLock { paused.insert(vm) }
  }

  public func saveMemory(vm: String, to file: String) throws {
    // A VM another process started has no memory here; it saves as idle.
    let memory = lock.withLock { running[vm] } ?? Array("idle \(vm)".utf8)
    guard FileManager.default.createFile(atPath: file, contents: Data(memory)) else {
      throw LabKitError(.failed, "cannot write the running state of VM '\(vm)' to \(file)")
    }
  }

  public func switchDisks(vm: String, to leaves: [String]) throws {
    lock.withLock { disks[vm] = leaves }
  }

  public func continueRunning(vm: String) throws {
    _ = lock.withLock { paused.remove(vm) }
  }

  /// Forgets a VM that stopped (called with the lock held); returns its memory.
  @discardableResult
  private func stopRunning(_ vm: String) -> [UInt8]? {
    paused.remove(vm)
    return running.removeValue(forKey: vm)
  }

  /// The leaves a VM was last switched to (nil before any switch in this process).
  public func leaves(of vm: String) -> [String]? {
    lock.withLock { disks[vm] }
  }

  /// Whether the VM is paused now.
  public func isPaused(_ vm: String) -> Bool {
    lock.withLock { paused.contains(vm) }
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
