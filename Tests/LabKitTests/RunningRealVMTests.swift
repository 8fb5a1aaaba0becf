import Foundation
import TestSupport
import XCTest

@testable import LabKit

/// A VM that runs on a real host (its process has the disk files open) is never left writing a file
/// the engine replaced or deleted: merging or removing its checkpoints waits until it is off.
final class RunningRealVMTests: LabKitTestCase {
  override func setUpWithError() throws {
    folder = TemporaryFolder()
    library = try Library(at: root, hosts: HostRegistry(["simulated": OpaqueHost()]))
  }

  func testMergeAndRemoveOfARunningVMAreRefusedAndChangeNothing() throws {
    try library.createVM(name: "web", diskSizes: [diskSize])
    try library.checkpoint(vm: "web", name: "one")
    try library.checkpoint(vm: "web", name: "two")
    try library.start(vm: "web")
    let files = filesUnder(root)
    let first = try library.checkpoint(vm: "web", named: "one")
    for attempt in [
      { try self.library.merge(checkpoint: first.id) }, { try self.library.remove(checkpoint: first.id) },
    ] {
      let error = expectError(.invalidState) { _ = try attempt() }
      XCTAssertTrue(
        error?.message.hasPrefix("checkpoints of VM 'web' cannot be") ?? false
          && error?.message.contains("`vmlab vm turn-off web`") ?? false, error?.message ?? "")
    }
    XCTAssertEqual(filesUnder(root), files, "nothing changed")
    XCTAssertEqual(try library.checkpoints(vm: "web").map(\.name), ["one", "two"])
    // What-if still shows the plan, and once the VM is off the merge goes ahead.
    XCTAssertFalse(try library.merge(checkpoint: first.id, whatIf: true).applied)
    try library.turnOff(vm: "web")
    XCTAssertTrue(try library.merge(checkpoint: first.id).applied)
    try assertConsistent()
  }
}
