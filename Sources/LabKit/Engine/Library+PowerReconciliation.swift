import Foundation

extension Library {
  /// Makes the catalog follow what really runs: a VM the catalog calls running whose host reports it
  /// off (its process died, the host rebooted) is recorded as stopped, with the moment this was
  /// found (`vm list` says "stopped outside vmlab at …"). A host that cannot tell (`unknown`, as
  /// the simulated host says of VMs another process started) leaves the catalog as it is, and so
  /// does a VM whose host this process does not provide. Runs each time the library is taken.
  func reconcilePowerStates() throws {
    let running = try catalog.read { tx in
      try tx.vms(in: .running)
    }
    var changed: [String] = []
    for var record in running {
      guard let driver = hosts.driver(named: record.host),
        (try? driver.powerState(of: record.name)) == .off
      else { continue }
      record.state = .stopped
      record.stoppedOutside = Date()
      try catalog.write { tx in try tx.update(record) }
      changed.append(record.name)
    }
    writeManifests(vms: changed)
  }
}
