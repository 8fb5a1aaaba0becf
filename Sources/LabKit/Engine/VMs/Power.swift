import Foundation
import VHD

extension Library {
  /// Starts a stopped VM, or resumes a saved one.
  @discardableResult
  public func start(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      let vm = try self.vm(named: record.name)
      let driver = try driver(record)
      let hosted = hosted(record, disks: vm.disks.map(\.path))
      switch record.state {
      case .running:
        return vm
      case .stopped:
        try driver.start(hosted)
      case .saved:
        guard let memoryPath = record.savedMemoryPath else {
          throw LabKitError(
            .inconsistent,
            "VM '\(record.name)' is saved but the catalog names no saved state; turn it off to discard it, or run `vmlab library check`"
          )
        }
        try driver.resume(hosted, from: absolute(memoryPath))
      }
      try recordPower(&record, .running, step: "start:recorded")
      try? writeManifest(vm: record.name)
      return try self.vm(named: record.name)
    }
  }

  /// Shuts a running VM down through its guest additions.
  @discardableResult
  public func shutDown(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      if record.state == .saved {
        // Its guest is not running, so it cannot shut down; saying nothing left the user believing it had.
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' is saved, not running, so its guest cannot shut down; start it to resume it (then shut it down), or turn it off to discard the saved state"
        )
      }
      guard record.state == .running else { return try vm(named: record.name) }
      guard record.additions else {
        throw LabKitError(
          .invalidState, "VM '\(record.name)' has no guest additions to shut it down gracefully; turn it off instead")
      }
      let driver = try driver(record)
      guard driver.capabilities.contains(.guestShutdown) else {
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' runs on the host '\(record.host)', which cannot shut a guest down gracefully; turn it off instead"
        )
      }
      try driver.shutDown()
      record.state = .stopped
      try catalog.write { tx in try tx.update(record) }
      try? writeManifest(vm: record.name)
      return try vm(named: record.name)
    }
  }

  /// Turns a VM off (a running one loses what it had not written; a saved one its saved state).
  @discardableResult
  public func turnOff(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      guard record.state != .stopped else { return try vm(named: record.name) }
      try driver(record).turnOff()
      try recordPower(&record, .stopped, step: "turn-off:recorded")
      try? writeManifest(vm: record.name)
      return try vm(named: record.name)
    }
  }

  /// Saves a running VM's state and stops it; `start` resumes it.
  @discardableResult
  public func save(vm name: String) throws -> VirtualMachine {
    try withVMLock(name) {
      var record = try catalog.read { tx in try vmRecord(tx, named: name) }
      guard record.state == .running else {
        throw LabKitError(.invalidState, "VM '\(record.name)' is \(record.state); only a running VM can be saved")
      }
      let driver = try driver(record)
      guard driver.capabilities.contains(.savedState) else {
        throw LabKitError(
          .invalidState,
          "VM '\(record.name)' runs on the host '\(record.host)', which cannot save a VM's running state; shut it down or turn it off instead"
        )
      }
      let path = "\(vmFolder(record.name))/saved.vsv"
      // The host streams the state into the file the journal names: a failure or a kill before the
      // commit removes it, and the catalog names it only once it is whole.
      try journaled(
        "save", vm: record.name, creates: [path], deletes: [],
        files: {
          try driver.saveMemoryAndStop(to: absolute(path))
          try fault("save:written")
        },
        commit: { tx in
          record.savedMemoryPath = path
          record.state = .saved
          try tx.update(record)
        })
      writeManifests(vms: [record.name])
      return try vm(named: record.name)
    }
  }

  /// Records a VM's new power state, which leaves any saved state behind. The saved state's file
  /// goes only after the commit that stops naming it, so the catalog never names a missing file
  /// (rule 1); `step` is the fault-injection point between the two.
  private func recordPower(_ record: inout VMRecord, _ state: PowerState, step: String) throws {
    let discarded = record.savedMemoryPath
    record.savedMemoryPath = nil
    record.state = state
    try catalog.write { tx in try tx.update(record) }
    try fault(step)
    if let discarded { removeFileIfPresent(absolute(discarded)) }
  }

  /// Stops the VMs of an operation, several at a time (a guest's shutdown takes a while): `stop`
  /// stops one and says what it did. Those `stopped` names are recorded in one transaction, before
  /// the operation's own. When one cannot be stopped, those already stopped that `runAgain` names
  /// are started again and its error is thrown: nothing is done.
  func stopForOperation<Item>(
    _ items: [Item], stop: @escaping (Item) throws -> Item, stopped: (Item) -> VMRecord?, runAgain: (Item) -> Bool
  ) throws -> [Item] {
    let outcomes = parallel(items, stop)
    let done = outcomes.compactMap(\.success)
    let changed = done.filter { stopped($0) != nil }
    if !changed.isEmpty { try catalog.write { tx in for item in changed { try tx.update(stopped(item)!) } } }
    if let failure = outcomes.compactMap(\.failure).first {
      for item in changed where runAgain(item) { _ = try? start(vm: stopped(item)!.name) }
      throw failure
    }
    return done
  }

  /// Stops a running VM so that an operation can change its disks: gracefully when it has guest
  /// additions, otherwise by turning it off. Returns what was done. With `discardingRun` (a restore
  /// that brings back a checkpoint's saved memory) the running guest is thrown away whole, so its
  /// power is cut at once: a graceful shutdown would only make the user wait seconds per VM.
  func stopForOperation(_ record: inout VMRecord, discardingRun: Bool = false) throws -> PowerAction {
    guard record.state != .stopped else { return .none }
    let driver = try driver(record)
    if record.state == .saved {
      try driver.turnOff()
      try recordPower(&record, .stopped, step: "stop:recorded")
      return .savedStateDiscarded
    }
    let action: PowerAction
    if record.additions && driver.capabilities.contains(.guestShutdown) && !discardingRun {
      try driver.shutDown()
      action = .shutDown
    } else {
      try driver.turnOff()
      action = .turnedOff
    }
    record.state = .stopped
    return action
  }
}
