import Foundation
import LabKit
import LuaHost
import XCTest

/// A host that runs VMs but does not simulate their guests, as a real hypervisor: no writes or
/// reads at byte offsets.
private final class RealLikeHost: ForwardingHost, @unchecked Sendable {
  init() { super.init(SimulatedHost()) }
}

/// A host whose "guest" is this machine: `run` starts the program here, in a folder of its own, so
/// the plumbing from Lua to a guest agent host (arguments, input, output, status, time limit) is
/// exercised with real programs. The QEMU host's own tests run them in real guests.
private final class LocalProgramHost: ForwardingHost, GuestAgentHost, @unchecked Sendable {
  private(set) var readyWaits: [Double] = []

  init() { super.init(SimulatedHost()) }

  func run(_ command: GuestCommand, in vm: HostedVM) throws -> GuestCommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: command.path)
    process.arguments = command.arguments
    process.currentDirectoryURL = URL(fileURLWithPath: vm.folder)
    let output = Pipe()
    let errors = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = input
    try process.run()
    input.fileHandleForWriting.write(command.input ?? Data())
    try input.fileHandleForWriting.close()
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return GuestCommandResult(standardOutput: stdout, standardError: stderr, status: process.terminationStatus)
  }

  func waitUntilReady(_ vm: HostedVM, timeout: Double) throws { readyWaits.append(timeout) }

  /// A console of numbered lines, so the count asked for shows.
  func recentConsole(of vm: HostedVM, lines: Int) -> String {
    (1...lines).map { "\(vm.name) line \($0)" }.joined(separator: "\n")
  }

  func runningAccelerator(of vm: HostedVM) -> String? { "tcg" }
}

/// `vm:write` and `vm:read` are the simulated host's: they keep working there and say clearly that
/// a VM of another host does not offer them.
final class EngineHostTests: EngineTestCase {
  private let agentHost = LocalProgramHost()

  override func setUpWithError() throws {
    try super.setUpWithError()
    let path = folder + "/library"
    let hosts = HostRegistry(["simulated": SimulatedHost(), "real": RealLikeHost(), "agent": agentHost])
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
    assertError(#"return real:read(1, 0, 4)"#, contains: "(on a real host, run programs in the guest with vm:exec)")
  }

  func testExecRunsAProgramInTheGuestAndReturnsItsOutputAndStatus() throws {
    try lua("vmlab.vms()")
    let library = try XCTUnwrap(library)
    try library.createVM(name: "web", diskSizes: [4 << 20], host: "agent")
    try lua(#"web = vmlab.vm.get("web")"#)
    assertError(
      #"web:exec("true")"#,
      contains: "VM 'web' is stopped; commands run only in a running guest (start it with `vmlab vm start web`)")
    try lua("web:start()")
    XCTAssertEqual(
      try lua(#"local r = web:exec("echo out; echo err >&2; exit 3"); return r.stdout, r.stderr, r.status"#),
      ["out\n", "err\n", .integer(3)])
    XCTAssertEqual(try lua(#"return web:exec({"/bin/cat"}, {input="typed"}).stdout"#), ["typed"])
    XCTAssertEqual(try lua(#"return web:exec({"/bin/echo", "a b", "c"}).stdout"#), ["a b c\n"])
    XCTAssertEqual(try lua(#"return web:waitReady{timeout=5} == web"#), [.boolean(true)])
    XCTAssertEqual(agentHost.readyWaits, [5])
    assertError(#"web:exec({})"#, contains: "the command is empty")
    assertError(#"web:exec({"/bin/echo", 3})"#, contains: "item 2 of the command: string expected, got number")
    assertError(
      #"web:exec(42)"#, contains: "a shell line (string) or {\"program\", \"argument\", …} expected, got number")
    assertError(#"web:exec("true", {timeout=0})"#, contains: "field 'timeout': give more than 0 seconds")
    assertError(#"web:exec("true", {tmeout=1})"#, contains: "unknown option 'tmeout'; known options: timeout, input")
    assertError(#"web:waitReady{timeout=-1}"#, contains: "field 'timeout': give more than 0 seconds")

    try lua(#"sim = vmlab.vm.create{name="sim", disks={"4M"}}; sim:start()"#)
    assertError(
      #"sim:exec("true")"#,
      contains:
        "VM 'sim' runs on the host 'simulated', which runs no guest to reach inside; commands run in guests of a real host (create the VM with --host qemu)"
    )
  }

  func testHardwareFromLua() throws {
    XCTAssertEqual(
      try lua(
        #"""
        local vm = vmlab.vm.create{name="small", disks={"4M"}, memory="256M", cpus=2, accelerator="tcg"}
        local hw = vm.hardware
        return hw.memory, hw.cpus, hw.accelerator, hw.boot, hw.network, vm.hostName, vm.hostKind, vm.host
        """#),
      [.integer(256 << 20), .integer(2), "tcg", "firmware", "none", "simulated", "virtual-server", "simulated"])
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

  func testHostByNameAcceleratorAndConsoleFromLua() throws {
    // `host=` takes a host's name (the VM runs there) or, as before, a host kind.
    XCTAssertEqual(
      try lua(
        #"""
        local vm = vmlab.vm.create{name="web", host="agent", hostKind="hypervisor", disks={"4M"}, accelerator="tcg"}
        local before = vm.accelerator
        vm:start()
        return vm.host, vm.hostKind, before, vm.accelerator
        """#),
      ["agent", "hypervisor", "tcg", "tcg"])
    XCTAssertEqual(
      try lua(#"return vmlab.vm.create{name="kind", host="hypervisor", disks={"4M"}}.hostName"#), ["simulated"])
    XCTAssertEqual(try lua(#"return vmlab.vm.get("web"):console(3)"#), ["web line 1\nweb line 2\nweb line 3"])
    // Twenty lines unless asked: nineteen line breaks.
    XCTAssertEqual(try lua(#"return select(2, vmlab.vm.get("web"):console():gsub("\n", ""))"#), [.integer(19)])
    // A VM of the simulated host has no console, and its accelerator is its setting.
    XCTAssertEqual(try lua(#"return vmlab.vm.get("kind"):console(), vmlab.vm.get("kind").accelerator"#), ["", "auto"])
    assertError(#"vmlab.vm.get("web"):console(0)"#, contains: "give a number of lines from 1 up, not 0")
    assertError(
      #"vmlab.vm.create{name="bad", host="vmware", disks={"4M"}}"#,
      contains:
        #"field 'host': a host ("agent", "real", "simulated") or a host kind ("virtual-server", "hypervisor") expected, got "vmware""#
    )
    assertError(
      #"vmlab.vm.create{name="bad", host="hypervisor", hostKind="hypervisor", disks={"4M"}}"#,
      contains: "field 'host' gives the host kind already; give one of them")
    assertError(
      #"vmlab.vm.create{name="bad", hostKind="agent", disks={"4M"}}"#,
      contains: #"field 'hostKind': "virtual-server" or "hypervisor" expected, got "agent""#)
    XCTAssertEqual(try lua(#"return vmlab.vm.exists("bad")"#), [.boolean(false)])
  }

  func testAnImageVMFromLuaNeedsABuiltImageAndAHostThatBootsIt() throws {
    assertError(
      #"vmlab.vm.create{name="t1", image="tiny", disks={"1G"}}"#,
      contains: "image 'tiny' not found (no image is built in ")
    assertError(#"vmlab.vm.create{name="t1", image="tiny", disks={"1G"}}"#, contains: "run `vmlab image build tiny`")
    assertError(
      #"vmlab.vm.create{name="t1", image="tiny", from="x.vhd"}"#,
      contains: "'image' makes disk 1 from the image: give 'image' or 'from', not both")
    assertError(
      #"vmlab.vm.create{name="t1", image="tiny", linked=true}"#,
      contains: "'linked' goes with 'from', not 'image'")
    assertError(
      #"vmlab.vm.create{name="t1", image="tiny", disks={"lots"}}"#, contains: "'lots' is not a size")
    // A built image (a manifest naming a root disk) on a host that runs no real guest is refused.
    let library = try XCTUnwrap(self.library)
    let folder = ImageTemplates(library: library.root).folder(of: "tiny")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try library.createVM(name: "donor", diskSizes: [4 << 20])
    try FileManager.default.copyItem(
      atPath: try library.vm(named: "donor").disks[0].path, toPath: folder + "/root.vhd")
    try ImageManifest(
      name: "tiny", built: Date(), kernel: "vmlinuz", initrd: "initrd.img", rootDisk: "root.vhd",
      commandLine: "console=ttyS0", kernelVersion: "6.1", modules: [], packages: [], readyMarker: "ready"
    ).write(to: folder)
    assertError(
      #"vmlab.vm.create{name="t1", host="simulated", image="tiny"}"#,
      contains: "VM 't1': image 'tiny' boots a real guest, which the simulated host cannot run; give --host qemu")
    XCTAssertEqual(try lua(#"return vmlab.vm.exists("t1")"#), [.boolean(false)])
  }
}
