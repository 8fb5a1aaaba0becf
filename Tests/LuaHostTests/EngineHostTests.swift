import Foundation
import LabKit
import LuaHost
import XCTest

/// A host that runs VMs but does not simulate their guests, as a real hypervisor: no writes or
/// reads at byte offsets.
private final class RealLikeHost: ForwardingHost, @unchecked Sendable {
  init() { super.init(SimulatedHost()) }
}

/// `vm:write` and `vm:read` are the simulated host's: they keep working there and say clearly that
/// a VM of another host does not offer them.
final class EngineHostTests: EngineTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    let path = folder + "/library"
    let hosts = HostRegistry(["simulated": SimulatedHost(), "real": RealLikeHost()])
    VMLabModule.install(in: state) { [unowned self] in
      self.libraryOpens += 1
      let library = try Library(at: path, hosts: hosts)
      self.library = library
      return library
    }
  }

  func testGuestWritesAndReadsAreTheSimulatedHostsOnly() throws {
    try lua(#"sim = vmlab.vm.create{name="sim", disks={"4M"}}; sim:start(); sim:write(1, 0, "data")"#)
    XCTAssertEqual(try lua("return sim:read(1, 0, 4)"), ["data"])
    let library = try XCTUnwrap(library)
    try library.createVM(name: "real", diskSizes: [4 << 20], host: "real")
    try lua(#"real = vmlab.vm.get("real"); real:start()"#)
    assertError(
      #"real:write(1, 0, "x")"#,
      contains:
        "vm:write works only on the simulated host: VM 'real' runs on the host 'real', which does not write or read a guest's disks at byte offsets"
    )
    assertError(#"return real:read(1, 0, 4)"#, contains: "vm:read works only on the simulated host")
    assertError(#"return real:read(1, 0, 4)"#, contains: "(a real host will offer vm:exec)")
  }

  func testHardwareFromLua() throws {
    XCTAssertEqual(
      try lua(
        #"""
        local vm = vmlab.vm.create{name="small", disks={"4M"}, memory="256M", cpus=2, accelerator="tcg"}
        local hw = vm.hardware
        return hw.memory, hw.cpus, hw.accelerator, hw.boot, hw.network, vm.hostName, vm.host
        """#),
      [.integer(256 << 20), .integer(2), "tcg", "firmware", "none", "simulated", "virtual-server"])
    XCTAssertEqual(try lua(#"return vmlab.vm.create{name="plain", disks={"4M"}}.hardware.memory"#), [.integer(1 << 30)])
    assertError(
      #"vmlab.vm.create{name="bad", disks={"4M"}, cpus=0}"#, contains: "VM 'bad' cannot have 0 CPUs: give 1 to 256")
    assertError(
      #"vmlab.vm.create{name="bad", disks={"4M"}, memory="1M"}"#, contains: "VM 'bad' cannot have 1048576 bytes")
    assertError(
      #"vmlab.vm.create{name="bad", disks={"4M"}, accelerator="hvf"}"#,
      contains: #"field 'accelerator': "auto", "kvm", "tcg" expected, got "hvf""#)
    XCTAssertEqual(try lua(#"return vmlab.vm.exists("bad")"#), [.boolean(false)])
  }
}
