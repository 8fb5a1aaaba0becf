import Foundation

extension Library {
  /// Makes the catalog follow what really runs: a VM the catalog calls running whose host reports it
  /// off (its process died, the host rebooted) is recorded as stopped, with the moment this was
  /// found (`vm list` says "stopped outside vmlab at …"). A host that cannot tell (`unknown`, as
  /// the simulated host says of VMs another process started) leaves the catalog as it is, and so
  /// does a VM whose host this process does not provide. Runs each time the library is taken.
  ///
  /// A VM its host reports paused was left so by a crash in the middle of an online checkpoint
  /// (no operation runs now: the library lock is held). Its disks are pointed at the leaves the
  /// catalog names (the old ones if the checkpoint rolled back, the new ones if it committed) and
  /// it continues, thawed; if that fails it is turned off and recorded as stopped.
  ///
  /// A VM the catalog calls stopped or saved whose host runs it is turned off (see
  /// `turnOffUnrecorded`).
  ///
  /// VMs a prepared operation holds are left as they are (paused, say) until its decision.
  func reconcilePowerStates() throws {
    let (running, held) = try catalog.read { tx in
      (try tx.vms(in: .running), try tx.vmKeysOfPreparedOperations())
    }
    var changed: [String] = []
    for var record in running where !held.contains(NameRules.key(record.name)) {
      guard let driver = hosts.driver(named: record.host) else { continue }
      let seen = try? driver.powerState(of: record.name)
      if seen == .paused, continuePaused(record, driver) { continue }
      guard seen == .off || seen == .paused else { continue }
      record.state = .stopped
      record.stoppedOutside = Date()
      try catalog.write { tx in try tx.update(record) }
      changed.append(record.name)
    }
    changed += try turnOffUnrecorded(except: held)
    writeManifests(vms: changed)
  }

  /// A VM the catalog records as stopped or saved whose host runs it: a command was killed between
  /// starting it and recording that it runs (a restore resuming it, a start). Nothing says which
  /// files its disks write, so it is turned off, and `vm list` says it stopped outside vmlab; its
  /// catalog state (and a saved VM's saved state) stays as recorded.
  private func turnOffUnrecorded(except held: Set<String>) throws -> [String] {
    let recorded = try catalog.read { tx in try tx.vms(in: .stopped) + tx.vms(in: .saved) }
    var changed: [String] = []
    for var record in recorded where !held.contains(NameRules.key(record.name)) {
      guard let driver = hosts.driver(named: record.host) else { continue }
      let seen = try? driver.powerState(of: record.name)
      guard seen == .running || seen == .paused else { continue }
      try? driver.turnOff(vm: record.name)
      record.stoppedOutside = Date()
      try catalog.write { tx in try tx.update(record) }
      changed.append(record.name)
    }
    return changed
  }

  /// Switches a paused VM to the catalog's leaves and lets it continue; false when the host failed
  /// (the VM is then turned off).
  private func continuePaused(_ record: VMRecord, _ driver: HostDriver) -> Bool {
    do {
      try driver.switchDisks(vm: record.name, to: try vm(named: record.name).disks.map(\.path))
      try driver.continueRunning(vm: record.name)
      if record.additions && driver.capabilities.contains(.fileSystemFreeze) {
        try? driver.thawFileSystems(vm: record.name)
      }
      return true
    } catch {
      try? driver.turnOff(vm: record.name)
      return false
    }
  }
}
