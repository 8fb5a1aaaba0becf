/// A VM's host as the engine calls it: every failure of the driver becomes an engine error that
/// names the host, the VM and what was asked (a driver's own errors know none of these).
struct ReportingHost: Sendable {
  let driver: HostDriver
  let hostName: String
  let vm: String

  var capabilities: HostCapabilities { driver.capabilities }

  /// Runs `body`, turning a driver's error into one that says which host failed to do what to which VM.
  func call<T>(_ action: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as LabKitError {
      throw error
    } catch {
      throw LabKitError(.failed, "the \(hostName) host could not \(action) VM '\(vm)': \(error)")
    }
  }

  func start(_ vm: HostedVM) throws { try call("start") { try driver.start(vm) } }
  func shutDown() throws { try call("shut down") { try driver.shutDown(vm: vm) } }
  func turnOff() throws { try call("turn off") { try driver.turnOff(vm: vm) } }
  func saveMemoryAndStop(to file: String) throws {
    try call("save the state of") { try driver.saveMemoryAndStop(vm: vm, to: file) }
  }
  func resume(_ vm: HostedVM, from file: String) throws { try call("resume") { try driver.resume(vm, from: file) } }
  func freezeFileSystems() throws { try call("freeze the file systems of") { try driver.freezeFileSystems(vm: vm) } }
  func thawFileSystems() throws { try call("thaw the file systems of") { try driver.thawFileSystems(vm: vm) } }
  func pause() throws { try call("pause") { try driver.pause(vm: vm) } }
  func saveMemory(to file: String) throws {
    try call("save the memory of") { try driver.saveMemory(vm: vm, to: file) }
  }
  func switchDisks(to leaves: [String]) throws {
    try call("switch the disks of") { try driver.switchDisks(vm: vm, to: leaves) }
  }
  func continueRunning() throws { try call("continue") { try driver.continueRunning(vm: vm) } }
}
