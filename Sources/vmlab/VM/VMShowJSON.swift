import Foundation
import LabKit
import QEMUHost

/// `vm show --json`: the VM as the catalog has it, plus what its host sees now: the run state
/// (`running`, `paused`, …, or `stopped`), the accelerator in use (the preference when it is not
/// running), and for a qemu VM the leaves its exports write, its pids and why it last stopped.
struct VMShowJSON: Encodable {
  var vm: VirtualMachine
  var runState: String
  var accelerator: String
  var qemu: QEMUDetails?

  struct QEMUDetails: Encodable {
    var leaves: [String]
    var attached: [String]
    var qemuPid: Int32
    var supervisorPid: Int32
  }

  init(_ vm: VirtualMachine) {
    self.vm = vm
    runState = vm.state.rawValue
    accelerator = vm.hardware.accelerator.rawValue
    if vm.host == "qemu", let status = try? Hosts.qemu.status(vm: vm.name) {
      runState = status.state
      accelerator = status.accelerator
      qemu = QEMUDetails(
        leaves: status.leaves, attached: status.attached, qemuPid: status.qemuPid, supervisorPid: status.supervisorPid)
    }
  }

  enum Keys: String, CodingKey { case runState, accelerator, qemu, stopReason }

  func encode(to encoder: Encoder) throws {
    // The VM's own members first, at the top level, so existing readers keep working.
    try vm.encode(to: encoder)
    var container = encoder.container(keyedBy: Keys.self)
    try container.encode(runState, forKey: .runState)
    try container.encode(accelerator, forKey: .accelerator)
    try container.encodeIfPresent(qemu, forKey: .qemu)
    try container.encodeIfPresent(Hosts.stopReason(vm), forKey: .stopReason)
  }
}
