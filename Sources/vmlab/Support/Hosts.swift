import Foundation
import LabKit
import QEMUHost

/// The hosts this vmlab runs VMs on. The engine never constructs a host: they are registered
/// here, once per process, and every library the process opens uses them.
enum Hosts {
  /// The QEMU host: its supervisors are this executable (`vmlab supervise VM-FOLDER`), a VM's
  /// folder is found in the library this process opened last, and `auto` asks the accelerator
  /// probe.
  static let qemu = QEMUHost(
    supervisor: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
    vmFolder: { name in libraryRoot.value + "/vms/" + name },
    accelerator: { setting in
      // `auto`: the probe's answer for this host, remembered in the library (probed on first use).
      try AcceleratorProbe(library: libraryRoot.value).choose(override: setting).accelerator.rawValue
    })

  static let registry: HostRegistry = {
    let registry = HostRegistry()
    registry.register(SimulatedHost.fromEnvironment(), as: "simulated")
    registry.register(qemu, as: "qemu")
    return registry
  }()

  /// The library the process works on (set by `LibraryOptions.open` and the script commands).
  static let libraryRoot = LibraryRoot()

  /// Checks a host name for a new VM: every host this vmlab names is built now.
  static func check(_ name: String) throws {
    guard registry.driver(named: name) != nil else {
      throw LabKitError(
        .invalidArgument, "this vmlab has no host '\(name)'; use one of \(registry.names.joined(separator: ", "))")
    }
  }

  /// Why a qemu VM is off, as its supervisor recorded it (nil for other hosts or when it runs).
  static func stopReason(_ vm: VirtualMachine) -> String? {
    vm.host == "qemu" ? qemu.lastStop(vm: vm.name) : nil
  }
}

/// The folder of the library in use, shared by the threads of the process.
final class LibraryRoot: @unchecked Sendable {
  private let lock = NSLock()
  /// Nil until set: the default location is looked up only if nothing sets one (every command that
  /// opens a library does, first).
  private var path: String?

  var value: String {
    lock.withLock {
      if let path { return path }
      let resolved = LibraryLocation.resolve(explicit: nil)
      path = resolved
      return resolved
    }
  }

  func set(_ newPath: String) {
    let standardized =
      Self.isStandardAbsolute(newPath) ? newPath : URL(fileURLWithPath: newPath).standardizedFileURL.path
    lock.withLock { path = standardized }
  }

  /// An absolute path with no `.`, `..` or empty component and no trailing slash, which
  /// standardizing leaves as it is (URL's standardizing costs 0.5 M instructions).
  static func isStandardAbsolute(_ path: String) -> Bool {
    guard path.hasPrefix("/"), path.count > 1, !path.hasSuffix("/") else { return false }
    return !path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).contains {
      $0.isEmpty || $0 == "." || $0 == ".."
    }
  }
}
