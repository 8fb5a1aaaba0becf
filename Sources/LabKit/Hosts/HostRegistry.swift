import Foundation

/// The hosts a process can run VMs on, by name (`simulated`, `qemu`). The layer above LabKit
/// registers them; the engine looks up each VM's host here and never constructs one.
public final class HostRegistry: @unchecked Sendable {
  private let lock = NSLock()
  private var drivers: [String: HostDriver] = [:]
  private var order: [String] = []

  /// The host new VMs get when none is named.
  public static let defaultName = "simulated"

  public init() {}

  /// A registry holding these drivers.
  public convenience init(_ drivers: [String: HostDriver]) {
    self.init()
    for (name, driver) in drivers.sorted(by: { $0.key < $1.key }) { register(driver, as: name) }
  }

  /// Adds (or replaces) the driver for a host name.
  public func register(_ driver: HostDriver, as name: String) {
    lock.withLock {
      if drivers.updateValue(driver, forKey: name) == nil { order.append(name) }
    }
  }

  /// The registered host names, in the order they were registered.
  public var names: [String] { lock.withLock { order } }

  /// The driver registered under `name`, if any.
  public func driver(named name: String) -> HostDriver? {
    lock.withLock { drivers[name] }
  }

  /// The driver for a VM's host, or an error naming the VM and what to do.
  func driver(for vm: String, host name: String) throws -> HostDriver {
    guard let driver = driver(named: name) else {
      throw LabKitError(
        .invalidState,
        "VM '\(vm)' runs on the host '\(name)', which this vmlab does not provide (it has \(names.joined(separator: ", "))); use a vmlab built with that host"
      )
    }
    return driver
  }
}
