import Foundation

extension Library {
  /// The host a VM names, reporting its failures as engine errors.
  func driver(_ record: VMRecord) throws -> ReportingHost {
    ReportingHost(driver: try hosts.driver(for: record.name, host: record.host), hostName: record.host, vm: record.name)
  }

  /// What the VM's host needs to run it on these leaves (absolute paths, slot order).
  func hosted(_ record: VMRecord, disks: [String]) -> HostedVM {
    HostedVM(name: record.name, folder: absolute(vmFolder(record.name)), disks: disks, hardware: record.hardware)
  }

  /// The same, on the VM's current leaves as the catalog records them.
  func hosted(_ record: VMRecord) throws -> HostedVM {
    hosted(record, disks: try vm(named: record.name).disks.map(\.path))
  }

  /// Checks that a host name can be used for a new VM.
  func checkHost(_ name: String, vm: String) throws {
    guard hosts.driver(named: name) != nil else {
      throw LabKitError(
        .invalidArgument,
        "VM '\(vm)' cannot use the host '\(name)': this vmlab provides \(hosts.names.map { "'\($0)'" }.joined(separator: ", ")); choose one of those"
      )
    }
  }

  /// The error for an operation that was committed when the host then failed to run the VM again:
  /// what was done stays done, and the user is told how to start the VM.
  func notRestarted(_ done: String, vm: String, _ error: Error) -> LabKitError {
    LabKitError(
      .hostFailedAfterCommit,
      "\(done); the VM did not start again: \(error). Start it with `vmlab vm start \(vm)`")
  }
}
