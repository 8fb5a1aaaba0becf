import Foundation
import LabKit
import TestSupport
import XCTest

@testable import QEMUHost

/// The accelerator probe: the answers that need no guest, what is remembered and when it is
/// reused, and one real probe of this host's KVM with the tiny image.
final class AcceleratorProbeTests: XCTestCase {
  private var library: TemporaryFolder!

  override func setUpWithError() throws {
    try TinyImageFixture.requireEmulator()
    library = TemporaryFolder()
  }

  private func remembered() -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: library.file("accelerator"))) ?? []
  }

  func testNoKVMDeviceMeansTCGAndTheAnswerIsRememberedForThisHost() throws {
    var probe = AcceleratorProbe(library: library.path)
    probe.kvmDevice = library.file("no-kvm")
    let choice = try probe.choose()
    XCTAssertEqual(choice.accelerator, .tcg)
    XCTAssertEqual(choice.summary, "tcg: \(library.file("no-kvm")) does not exist (no KVM in this kernel or container)")
    XCTAssertNotNil(choice.probed)
    XCTAssertEqual(remembered(), ["\(AcceleratorProbe.hostName()).json"])
    XCTAssertEqual(probe.remembered(), choice)
    XCTAssertTrue(choice.qemu.hasPrefix("QEMU emulator version "), choice.qemu)
  }

  func testADeviceThatCannotBeOpenedMeansTCGWithTheReason() throws {
    var probe = AcceleratorProbe(library: library.path)
    probe.kvmDevice = library.path  // a folder: open(O_RDWR) fails with EISDIR
    let choice = try probe.probe()
    XCTAssertEqual(choice.accelerator, .tcg)
    XCTAssertEqual(choice.reason, "\(library.path) cannot be opened: Is a directory")
  }

  func testAnOverrideIsTakenAsIsAndNothingIsRemembered() throws {
    let probe = AcceleratorProbe(library: library.path)
    XCTAssertEqual(try probe.choose(override: .tcg).summary, "tcg: chosen with --accel tcg; the probe was not run")
    XCTAssertEqual(try probe.choose(override: .kvm).accelerator, .kvm)
    XCTAssertEqual(remembered(), [])
  }

  func testWithoutAnImageTheProbeDoesNotRunAndAsksAgainLater() throws {
    var probe = AcceleratorProbe(library: library.path)
    probe.kvmDevice = "/dev/null"  // opens, as a working /dev/kvm would
    let choice = try probe.choose()
    XCTAssertEqual(choice.accelerator, .tcg)
    XCTAssertEqual(
      choice.reason, "not probed: /dev/null opens, but the library has no image to boot (`vmlab image build tiny`)")
    XCTAssertNil(choice.probed)
    XCTAssertEqual(remembered(), [], "probed again once an image is built")
  }

  func testAnAnswerForAnotherQEMUIsProbedAgain() throws {
    var probe = AcceleratorProbe(library: library.path)
    probe.kvmDevice = library.file("no-kvm")
    _ = try probe.choose()
    let file = library.file("accelerator/\(AcceleratorProbe.hostName()).json")
    let text = try String(contentsOfFile: file, encoding: .utf8)
    let older = text.replacingOccurrences(of: "QEMU emulator version", with: "QEMU emulator version 1.0, was")
    XCTAssertNotEqual(older, text)
    try older.write(toFile: file, atomically: true, encoding: .utf8)
    XCTAssertNil(probe.remembered())
    probe.kvmDevice = library.path
    XCTAssertEqual(try probe.choose().reason, "\(library.path) cannot be opened: Is a directory")
  }

  /// The real thing: boots the tiny image with -accel kvm. Either the guest's agent answers in
  /// time (KVM works here), or the answer is TCG with what went wrong; no qemu is left behind.
  func testTheProbeBootsTheImageWithKVMAndKillsItsGuest() throws {
    let image = try TinyImageFixture.image()
    let library = (image.folder as NSString).deletingLastPathComponent.replacingOccurrences(of: "/templates", with: "")
    var probe = AcceleratorProbe(library: library)
    probe.timeLimit = 15
    guard FileManager.default.fileExists(atPath: probe.kvmDevice) else {
      throw XCTSkip("\(probe.kvmDevice) does not exist: the answer is tcg without a probe guest (tested above)")
    }
    let started = Date()
    let choice = try probe.choose(reprobe: true)
    let took = Date().timeIntervalSince(started)
    print("accelerator probe here: \(choice.summary) (\(String(format: "%.1f", took)) s)")
    switch choice.accelerator {
    case .kvm:
      XCTAssertLessThan(try XCTUnwrap(choice.probeSeconds), 15)
    case .tcg:
      XCTAssertTrue(
        choice.reason.contains("did not reach its agent in 15 s") || choice.reason.contains("qemu could not run"),
        choice.reason)
    }
    XCTAssertLessThan(took, 45)
    XCTAssertEqual(probe.remembered(), choice)
    // The probe SIGKILLs its qemu. A KVM guest that spins in the kernel can take a while to die
    // after that on a loaded host (it is not sleeping where a signal lands), so the test waits for
    // it, within a deadline, rather than looking once.
    func probes() throws -> [Int32] {
      try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter {
        let commandLine = FileManager.default.contents(atPath: "/proc/\($0)/cmdline") ?? Data()
        return String(decoding: commandLine, as: UTF8.self).contains("vmlab-probe-")
      }
    }
    let deadline = Date().addingTimeInterval(60)
    while try !probes().isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
    XCTAssertEqual(try probes(), [], "the probe's qemu is gone")
  }
}
