import LabKit
import TestSupport
import XCTest

@testable import Cluster

/// The template steps on an agent's library: their arguments checked like a user's, an image VM
/// without its image refused with what to do, and nothing left behind.
final class TemplateStepTests: AgentLibraryTestCase {
  private func run(_ kind: String, _ arguments: String) throws -> StepRunner.Outcome {
    try StepRunner(library: library, stillHeld: { true }, progress: { _ in })
      .run(claimed(kind, arguments))
  }

  func testImageNamesFromTheDatabaseAreCheckedLikeAUsersName() {
    for kind in ["pull-template", "build-image"] {
      XCTAssertThrowsError(try run(kind, #"{"image": "../../etc"}"#)) { error in
        XCTAssertTrue("\(error)".contains("image name '../../etc' is not allowed"), "\(error)")
      }
    }
    XCTAssertThrowsError(try run("create-vm", #"{"name": "web", "disks": [], "image": "a/b"}"#)) { error in
      XCTAssertTrue("\(error)".contains("image name 'a/b' is not allowed"), "\(error)")
    }
    XCTAssertThrowsError(try run("pull-template", #"{"name": "tiny"}"#)) { error in
      XCTAssertTrue("\(error)".contains("step 'pull-template' has arguments this agent cannot read"), "\(error)")
    }
  }

  func testAnImageVMWithoutItsImageIsRefusedAndNothingIsMade() throws {
    XCTAssertThrowsError(
      try run("create-vm", #"{"name": "web", "disks": [1048576], "image": "tiny", "host": "qemu"}"#)
    ) { error in
      XCTAssertTrue("\(error)".contains("image 'tiny' not found (no image is built in"), "\(error)")
      XCTAssertTrue("\(error)".contains("run `vmlab image build tiny`"), "\(error)")
    }
    XCTAssertEqual(try library.vms().count, 0)
  }

  func testAnImageVMNeedsAHostThatBootsGuests() throws {
    try StandInImage.make(in: library.root)
    XCTAssertThrowsError(
      try run("create-vm", #"{"name": "web", "disks": [], "image": "tiny", "host": "simulated"}"#)
    ) { error in
      XCTAssertTrue("\(error)".contains("which the simulated host cannot run; give --host qemu"), "\(error)")
    }
    XCTAssertEqual(try library.vms().count, 0)
  }

  func testAnAgentWithoutTemplateAccessSaysSo() {
    XCTAssertThrowsError(try run("pull-template", #"{"image": "tiny"}"#)) { error in
      XCTAssertEqual("\(error)", "this agent cannot pull templates")
    }
    XCTAssertThrowsError(try run("build-image", #"{"image": "tiny"}"#)) { error in
      XCTAssertEqual("\(error)", "this agent cannot build images")
    }
  }
}
