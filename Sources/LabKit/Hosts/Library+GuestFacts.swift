import Foundation

/// What a VM's host knows of its real guest, for scripts and listings: the accelerator it runs on
/// and its console. Neither needs the VM to run on a host with guests: the answers fall back to
/// the VM's setting and to nothing.
extension Library {
  /// The accelerator the VM's guest runs on now (`kvm`, `tcg`) where its host runs real guests
  /// and it runs; otherwise its hardware setting (`auto`, `kvm`, `tcg`).
  public func accelerator(of vm: String) throws -> String {
    let record = try catalog.read { db in try vmRecord(db, named: vm) }
    if record.state == .running, let host = try driver(record).driver as? GuestAgentHost,
      let running = host.runningAccelerator(of: try hosted(record))
    {
      return running
    }
    return record.hardware.accelerator.rawValue
  }

  /// The last `lines` lines the VM's guest wrote to its console (its log outlives the guest, so a
  /// stopped VM shows how it ended); empty on a host without real guests or before its first start.
  public func recentConsole(of vm: String, lines: Int) throws -> String {
    let record = try catalog.read { db in try vmRecord(db, named: vm) }
    guard let host = try driver(record).driver as? GuestAgentHost else { return "" }
    return host.recentConsole(of: try hosted(record), lines: lines)
  }
}
