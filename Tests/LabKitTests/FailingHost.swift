import Foundation
import TestSupport

@testable import LabKit

/// A host that fails where a test says: each call named in `failing` (`start`, `resume`,
/// `saveMemoryAndStop`, `shutDown`, `turnOff`, `freeze`, `thaw`) throws for the VMs listed (all VMs when the list is
/// empty), and `powerState(of:)` reports the VMs in `stoppedOutside` off, as a real host does when
/// a VM's process died. Everything else is a `TestHost`'s behaviour.
final class FailingHost: SimulatingHost, @unchecked Sendable {
  let inner = TestHost()
  private let lock = NSLock()
  private var failures: [String: Set<String>] = [:]
  private var stopped: Set<String> = []
  var capabilities: HostCapabilities {
    get { inner.capabilities }
    set { inner.capabilities = newValue }
  }

  struct HostError: Error, CustomStringConvertible {
    var call: String
    var vm: String
    var description: String { "the host failed to \(call) VM '\(vm)' (injected)" }
  }

  /// Makes `call` fail, for these VMs or for every VM.
  func fail(_ call: String, for vms: Set<String> = []) { lock.withLock { failures[call] = vms } }
  func heal() { lock.withLock { failures = [:] } }
  /// The host says the VM is off (its process died).
  func killed(_ vm: String) {
    lock.withLock { _ = stopped.insert(vm) }
    try? inner.turnOff(vm: vm)
  }

  private func check(_ call: String, _ vm: String) throws {
    let fails = lock.withLock { failures[call].map { $0.isEmpty || $0.contains(vm) } ?? false }
    if fails { throw HostError(call: call, vm: vm) }
  }

  func start(_ vm: HostedVM) throws {
    try check("start", vm.name)
    lock.withLock { _ = stopped.remove(vm.name) }
    try inner.start(vm)
  }

  func shutDown(vm: String) throws {
    try check("shutDown", vm)
    try inner.shutDown(vm: vm)
  }

  func turnOff(vm: String) throws {
    try check("turnOff", vm)
    try inner.turnOff(vm: vm)
  }

  func saveMemoryAndStop(vm: String, to file: String) throws {
    try check("saveMemoryAndStop", vm)
    try inner.saveMemoryAndStop(vm: vm, to: file)
  }

  func resume(_ vm: HostedVM, from file: String) throws {
    try check("resume", vm.name)
    lock.withLock { _ = stopped.remove(vm.name) }
    try inner.resume(vm, from: file)
  }

  func powerState(of vm: String) throws -> HostPowerState {
    if lock.withLock({ stopped.contains(vm) }) { return .off }
    if lock.withLock({ pausedVMs.contains(vm) }) { return .paused }
    return try inner.powerState(of: vm)
  }

  func pause(vm: String) throws {
    try check("pause", vm)
    try inner.pause(vm: vm)
  }

  func saveMemory(vm: String, to file: String) throws {
    try check("saveMemory", vm)
    try inner.saveMemory(vm: vm, to: file)
  }

  func switchDisks(vm: String, to leaves: [String]) throws {
    try check("switchDisks", vm)
    try inner.switchDisks(vm: vm, to: leaves)
  }

  func continueRunning(vm: String) throws {
    try check("continue", vm)
    lock.withLock { _ = pausedVMs.remove(vm) }
    try inner.continueRunning(vm: vm)
  }

  /// VMs the host reports paused (left so by a crash during an online checkpoint).
  private var pausedVMs: Set<String> = []
  func leftPaused(_ vm: String) { lock.withLock { _ = pausedVMs.insert(vm) } }

  func freezeFileSystems(vm: String) throws {
    try check("freeze", vm)
    try inner.freezeFileSystems(vm: vm)
  }

  func thawFileSystems(vm: String) throws {
    try check("thaw", vm)
    try inner.thawFileSystems(vm: vm)
  }
}

/// A host that does not simulate its guests (as a real one): no writes at byte offsets.
final class OpaqueHost: ForwardingHost, @unchecked Sendable {
  let host = TestHost()
  init() { super.init(host) }
}

/// A library whose host is a `FailingHost` (with `hostCapabilities`, the default host's when nil);
/// `reopen()` opens the library again on the same host, as a new process would find it.
class FailingHostTestCase: LabKitTestCase {
  var failing: FailingHost!
  var hostCapabilities: HostCapabilities? { nil }

  override func setUpWithError() throws {
    folder = TemporaryFolder()
    failing = FailingHost()
    if let hostCapabilities { failing.capabilities = hostCapabilities }
    library = try Library(at: root, host: failing)
  }

  override func reopen() throws {
    try library.close()
    library = nil
    library = try Library(at: root, host: failing)
  }
}
