import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// What an agent does with a step's arguments on its library: names from the database checked as
/// names users type, unreadable arguments refused, retries that skip what an earlier attempt did,
/// and nothing started once the lease is gone.
final class StepRunnerTests: AgentLibraryTestCase {
  private func step(_ kind: String, _ arguments: String, attempt: Int = 1) -> ClaimedStep {
    claimed(kind, arguments, attempt: attempt)
  }

  private func run(_ step: ClaimedStep, held: Bool = true) throws -> StepRunner.Outcome {
    try StepRunner(library: library, stillHeld: { held }, progress: { _ in }).run(step)
  }

  func testAVMNameFromTheDatabaseIsCheckedLikeAUsersName() throws {
    XCTAssertThrowsError(try run(step("create-vm", #"{"name": "../escape", "disks": [1048576]}"#))) { error in
      XCTAssertTrue("\(error)".contains("VM name '../escape' is not allowed"), "\(error)")
    }
    XCTAssertThrowsError(try run(step("start-vms", #"{"vms": ["ok", "a/b"]}"#))) { error in
      XCTAssertTrue("\(error)".contains("VM name 'a/b' is not allowed"), "\(error)")
    }
    XCTAssertEqual(try library.vms().count, 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("escape")))
  }

  func testUnknownKindsAndUnreadableArgumentsAreRefused() {
    XCTAssertThrowsError(try run(step("format-disk", "{}"))) { error in
      XCTAssertTrue(
        "\(error)".contains("unknown step kind 'format-disk'; this agent runs create-vm, start-vms"), "\(error)")
    }
    XCTAssertThrowsError(try run(step("checkpoint-vms", #"{"vms": ["a"]}"#))) { error in
      XCTAssertTrue("\(error)".contains("step 'checkpoint-vms' has arguments this agent cannot read"), "\(error)")
    }
    XCTAssertThrowsError(try run(step("start-vms", #"{"vms": []}"#))) { error in
      XCTAssertTrue("\(error)".contains("the step names no VMs"), "\(error)")
    }
    XCTAssertThrowsError(try run(step("create-vm", #"{"name": "a", "disks": [1048576], "hostKind": "mainframe"}"#))) {
      error in
      XCTAssertTrue("\(error)".contains("host kind 'mainframe' is not virtual-server or hypervisor"), "\(error)")
    }
  }

  func testARetrySkipsWhatAnEarlierAttemptFinished() throws {
    let create = step("create-vm", #"{"name": "web", "disks": [1048576]}"#)
    XCTAssertEqual(try run(create).message, "created VM 'web' on host simulated")
    let again = try run(create)
    XCTAssertEqual(again.message, "VM 'web' already in the library (an earlier attempt made it)")
    XCTAssertEqual(again.placed, ["web"])
    let checkpoint = step("checkpoint-vms", #"{"vms": ["web"], "name": "clean"}"#)
    XCTAssertEqual(try run(checkpoint).message, "checkpoint 'clean' of web")
    XCTAssertTrue(try run(checkpoint).message.contains("web had it already"))
    XCTAssertEqual(try library.checkpoints(vm: "web").map(\.name), ["clean"])
    let restore = try run(step("restore-vms", #"{"vms": ["web"], "checkpoint": "clean"}"#))
    XCTAssertEqual(restore.message, "restored web to checkpoint 'clean'")
  }

  func testNothingStartsOnceTheLeaseIsGone() throws {
    _ = try run(step("create-vm", #"{"name": "web", "disks": [1048576]}"#))
    XCTAssertThrowsError(try run(step("checkpoint-vms", #"{"vms": ["web"], "name": "clean"}"#), held: false)) {
      XCTAssertTrue($0 is StepRunner.LeaseLost, "\($0)")
    }
    XCTAssertEqual(try library.checkpoints(vm: "web").count, 0)
  }
}
