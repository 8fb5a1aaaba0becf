/// A host that hands every call to another one: the base for a host that changes one answer (a
/// logging host, a host that hides its guests, a test's host whose VMs died) and passes on the rest.
open class ForwardingHost: HostDriver, @unchecked Sendable {
  public let inner: HostDriver

  public init(_ inner: HostDriver) {
    self.inner = inner
  }

  open var capabilities: HostCapabilities { inner.capabilities }
  open func start(_ vm: HostedVM) throws { try inner.start(vm) }
  open func shutDown(vm: String) throws { try inner.shutDown(vm: vm) }
  open func turnOff(vm: String) throws { try inner.turnOff(vm: vm) }
  open func saveMemoryAndStop(vm: String, to file: String) throws { try inner.saveMemoryAndStop(vm: vm, to: file) }
  open func resume(_ vm: HostedVM, from file: String) throws { try inner.resume(vm, from: file) }
  open func powerState(of vm: String) throws -> HostPowerState { try inner.powerState(of: vm) }
  open func freezeFileSystems(vm: String) throws { try inner.freezeFileSystems(vm: vm) }
  open func thawFileSystems(vm: String) throws { try inner.thawFileSystems(vm: vm) }
  open func pause(vm: String) throws { try inner.pause(vm: vm) }
  open func saveMemory(vm: String, to file: String) throws { try inner.saveMemory(vm: vm, to: file) }
  open func switchDisks(vm: String, to leaves: [String]) throws { try inner.switchDisks(vm: vm, to: leaves) }
  open func continueRunning(vm: String) throws { try inner.continueRunning(vm: vm) }
}
