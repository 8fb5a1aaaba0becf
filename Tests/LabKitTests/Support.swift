import Foundation
import TestSupport
import VHD
import XCTest

@testable import LabKit

let MiB: UInt64 = 1 << 20

typealias Seeded = SeededBytes

/// A host whose guest "memory" a test can set, so that saving and restoring it shows. Its guests are
/// simulated (the engine writes for them), like the simulated host's.
final class TestHost: SimulatingHost, @unchecked Sendable {
  private let lock = NSLock()
  private var running: [String: [UInt8]] = [:]
  private(set) var log: [String] = []
  /// Seconds each shutdown takes (to see jobs overlap).
  var shutdownDelay: Double = 0
  /// Every capability but pausing: its online checkpoints save and resume (the restarting path);
  /// tests of the pausing path add `.pauseAndSwitch`.
  var capabilities: HostCapabilities = HostCapabilities.all.subtracting(.pauseAndSwitch)
  /// The disks each VM was last started or resumed on.
  private(set) var disks: [String: [String]] = [:]

  func start(_ vm: HostedVM) throws {
    lock.withLock {
      running[vm.name] = Array("booted \(vm.name)".utf8)
      disks[vm.name] = vm.disks
      log.append("start \(vm.name)")
    }
  }

  func shutDown(vm: String) throws {
    if shutdownDelay > 0 { Thread.sleep(forTimeInterval: shutdownDelay) }
    lock.withLock {
      _ = running.removeValue(forKey: vm)
      log.append("shutdown \(vm)")
    }
  }

  func turnOff(vm: String) throws {
    lock.withLock {
      _ = running.removeValue(forKey: vm)
      log.append("turnoff \(vm)")
    }
  }

  func saveMemoryAndStop(vm: String, to file: String) throws {
    let memory = lock.withLock {
      log.append("save \(vm)")
      return running.removeValue(forKey: vm) ?? Array("idle \(vm)".utf8)
    }
    try Data(memory).write(to: URL(fileURLWithPath: file))
  }

  func resume(_ vm: HostedVM, from file: String) throws {
    let memory = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    lock.withLock {
      running[vm.name] = memory
      disks[vm.name] = vm.disks
      log.append("resume \(vm.name)")
    }
  }

  func powerState(of vm: String) throws -> HostPowerState {
    lock.withLock { running[vm] == nil ? .unknown : .running }
  }

  func pause(vm: String) throws { lock.withLock { log.append("pause \(vm)") } }

  func saveMemory(vm: String, to file: String) throws {
    let memory = lock.withLock {
      log.append("save-running \(vm)")
      return running[vm] ?? Array("idle \(vm)".utf8)
    }
    try Data(memory).write(to: URL(fileURLWithPath: file))
  }

  func switchDisks(vm: String, to leaves: [String]) throws {
    lock.withLock {
      disks[vm] = leaves
      log.append("switch \(vm)")
    }
  }

  func continueRunning(vm: String) throws { lock.withLock { log.append("continue \(vm)") } }

  func freezeFileSystems(vm: String) throws { lock.withLock { log.append("freeze \(vm)") } }
  func thawFileSystems(vm: String) throws { lock.withLock { log.append("thaw \(vm)") } }

  func setMemory(_ vm: String, _ text: String) { lock.withLock { running[vm] = Array(text.utf8) } }
  func memory(_ vm: String) -> String? { lock.withLock { running[vm].map { String(decoding: $0, as: UTF8.self) } } }
}

extension Library {
  /// A library whose VMs of the default host run on `host` (most tests need one host).
  convenience init(at path: String, host: HostDriver, wait: Bool = false) throws {
    try self.init(at: path, hosts: HostRegistry([HostRegistry.defaultName: host]), wait: wait)
  }

  static func repair(at path: String, host: HostDriver) throws -> RepairReport {
    try repair(at: path, hosts: HostRegistry([HostRegistry.defaultName: host]))
  }
}

extension FaultPlan {
  /// Fails with the engine's own kind of error, as a failing step of the engine would.
  convenience init(step: String, occurrence: Int = 1) {
    self.init(step: step, occurrence: occurrence, error: LabKitError(.failed, "injected failure"))
  }
}

/// 16 MiB rounded up to a whole CHS geometry, as every disk vmlab creates.
let diskSize = DiskGeometry.rounding(size: 16 * MiB).size

extension Library {
  /// Reads a whole disk of a VM as it is now.
  func contents(_ vm: String, disk: Int, size: UInt64 = diskSize) throws -> [UInt8] {
    try diskRead(vm: vm, disk: disk, offset: 0, count: Int(size))
  }

  /// Reads a whole disk of a checkpoint's frozen state, without restoring it.
  func contents(of checkpoint: Checkpoint, disk: Int) throws -> [UInt8] {
    let chain = try DiskChain.open(checkpoint.disks[disk - 1])
    defer { chain.close() }
    return try chain.read(at: 0, count: Int(chain.size))
  }

  /// Starts the VM if needed and writes as its guest.
  func write(_ vm: String, disk: Int, at offset: UInt64, _ bytes: [UInt8]) throws {
    if try self.vm(named: vm).state != .running { try start(vm: vm) }
    try guestWrite(vm: vm, disk: disk, offset: offset, bytes: bytes)
  }
}

/// Every file under a folder (relative paths), for "nothing else changed" checks.
func filesUnder(_ root: String) -> Set<String> {
  var result: Set<String> = []
  guard let walker = FileManager.default.enumerator(atPath: root) else { return result }
  while let item = walker.nextObject() as? String {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: root + "/" + item, isDirectory: &isFolder), !isFolder.boolValue {
      result.insert(item)
    }
  }
  return result
}

/// A byte pattern that differs for every call.
func pattern(_ tag: UInt8, _ count: Int) -> [UInt8] {
  (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(tag) &* 7 &+ 1) ^ tag }
}

func assertEqualBytes(_ a: [UInt8], _ b: [UInt8], _ message: String, file: StaticString = #filePath, line: UInt = #line)
{
  guard !same(a, b) else { return }
  guard a.count == b.count else {
    XCTFail("\(message): sizes differ \(a.count) vs \(b.count)", file: file, line: line)
    return
  }
  let first = a.indices.first { a[$0] != b[$0] }!
  XCTFail("\(message): first difference at byte \(first) (\(a[first]) vs \(b[first]))", file: file, line: line)
}

class LabKitTestCase: XCTestCase {
  var folder: TemporaryFolder!
  var host: TestHost!
  var library: Library!

  override func setUpWithError() throws {
    folder = TemporaryFolder()
    host = TestHost()
    library = try Library(at: folder.path + "/lib", host: host)
  }

  override func tearDownWithError() throws {
    try library?.close()
    library = nil
    host = nil
    folder = nil
  }

  var root: String { folder.path + "/lib" }

  /// Drops the library object (releasing its lock) and opens the folder again, running recovery.
  func reopen() throws {
    try library.close()
    library = nil
    library = try Library(at: root, host: host)
  }

  func assertConsistent(file: StaticString = #filePath, line: UInt = #line) throws {
    let problems = try library.check()
    XCTAssertEqual(problems, [], "check() found problems", file: file, line: line)
  }

  func expectError(
    _ kind: LabKitError.Kind, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line
  ) -> LabKitError? {
    do {
      try body()
      XCTFail("expected a \(kind) error", file: file, line: line)
      return nil
    } catch let error as LabKitError {
      XCTAssertEqual(error.kind, kind, "\(error.message)", file: file, line: line)
      return error
    } catch {
      XCTFail("expected a LabKitError \(kind), got \(error)", file: file, line: line)
      return nil
    }
  }
}

// Byte comparisons with memcmp: `==` on [UInt8] is element by element and unspecialised in debug
// builds, which made it the slowest part of these tests.
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
  a.count == b.count
    && a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}

func same(_ a: [UInt8]?, _ b: [UInt8]?) -> Bool {
  switch (a, b) {
  case (nil, nil): return true
  case (let a?, let b?): return same(a, b)
  default: return false
  }
}

func same(_ a: [[UInt8]], _ b: [[UInt8]]) -> Bool {
  a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
}

func same(_ a: [[UInt8]]?, _ b: [[UInt8]]?) -> Bool {
  switch (a, b) {
  case (nil, nil): return true
  case (let a?, let b?): return same(a, b)
  default: return false
  }
}
