import Foundation
import TestSupport
import XCTest

/// The disk verbs do not modify a disk that others read: a library's template (every linked clone
/// reads through it) or a parent of differencing disks beside it, unless forced.
final class SharedDiskProtectionTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: String { folder.file("library") }

  override func setUp() {
    folder = TemporaryFolder()
  }

  private func run(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    let result = try vmlab(arguments, in: folder.path)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }

  private func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

  /// What a VM's disk reads, through its chain.
  private func reads(_ vm: String) throws -> Data {
    let output = folder.file("\(vm).bin")
    try run(["vm", "read", vm, "--length", "1M", "--output", output, "--library", library])
    return try contents(output)
  }

  func testTheTemplateOfLinkedClonesIsNotWrittenOrMergedInto() throws {
    try run(["disk", "create", "golden.vhd", "--size", "4M"])
    XCTAssertTrue(
      FileManager.default.createFile(atPath: folder.file("golden.bin"), contents: Data(repeating: 0x47, count: 4096)))
    try run(["disk", "write", "golden.vhd", "--input", "golden.bin"])
    for clone in ["c1", "c2"] {
      try run(["vm", "create", clone, "--from", "golden.vhd", "--linked", "--library", library])
    }
    let template = folder.file("library/templates/golden.vhd")
    XCTAssertTrue(FileManager.default.fileExists(atPath: template))
    let templateBytes = try contents(template)
    let c2Before = try reads("c2")
    XCTAssertEqual(c2Before.prefix(4096), Data(repeating: 0x47, count: 4096))

    // Writing into the template: refused, the file untouched.
    XCTAssertTrue(
      FileManager.default.createFile(atPath: folder.file("patch.bin"), contents: Data(repeating: 0x58, count: 512)))
    var result = try run(["disk", "write", template, "--input", "patch.bin"], expect: 1)
    XCTAssertTrue(result.error.contains("template of the library \(library)"), result.error)
    XCTAssertTrue(result.error.contains("every clone would change"), result.error)
    XCTAssertTrue(result.error.contains("--force"), result.error)
    XCTAssertEqual(try contents(template), templateBytes)

    // Merging a clone's own disk (written by its guest) into the template: refused, nothing merged.
    try run(["vm", "start", "c1", "--library", library])
    try run(["vm", "write", "c1", "--input", "patch.bin", "--library", library])
    let cloneDisk = folder.file("library/vms/c1/c1-disk1.vhd")
    result = try run(["disk", "merge", cloneDisk], expect: 1)
    XCTAssertTrue(result.error.contains("it is a disk of VM 'c1' in the library \(library)"), result.error)
    XCTAssertTrue(result.error.contains("vmlab checkpoint merge"), result.error)
    // The same clone disk copied out of the library still reads through the template.
    let outside = folder.file("loose.vhd")
    try FileManager.default.copyItem(atPath: cloneDisk, toPath: outside)
    result = try run(["disk", "merge", outside], expect: 1)
    XCTAssertTrue(result.error.contains("merge \(outside) into \(template)"), result.error)
    XCTAssertTrue(result.error.contains("template"), result.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: cloneDisk), "the clone's disk is still there")
    XCTAssertEqual(try contents(template), templateBytes)
    XCTAssertEqual(try reads("c2"), c2Before, "the other clone reads what it did")

    // Forced, it goes ahead: the other clone changes, as the refusal said.
    try run(["disk", "write", template, "--input", "patch.bin", "--force"])
    XCTAssertEqual(try reads("c2").prefix(512), Data(repeating: 0x58, count: 512))
  }

  func testAParentOfDifferencingDisksBesideItIsNotWrittenInto() throws {
    try run(["disk", "create", "base.vhd", "--size", "4M"])
    try run(["disk", "create", "a.vhd", "--parent", "base.vhd"])
    let before = try contents(folder.file("base.vhd"))
    XCTAssertTrue(
      FileManager.default.createFile(atPath: folder.file("patch.bin"), contents: Data(repeating: 1, count: 512)))
    let result = try run(["disk", "write", "base.vhd", "--input", "patch.bin"], expect: 1)
    XCTAssertTrue(result.error.contains("other disks read it and would change: \(folder.file("a.vhd"))"), result.error)
    XCTAssertEqual(try contents(folder.file("base.vhd")), before)
    // The leaf itself is for writing.
    try run(["disk", "write", "a.vhd", "--input", "patch.bin"])
    try run(["disk", "check", "a.vhd"])
  }

  func testAMergeOfAChildWhoseParentNothingElseReadsStillWorks() throws {
    try run(["disk", "create", "base.vhd", "--size", "4M"])
    try run(["disk", "create", "a.vhd", "--parent", "base.vhd"])
    // A folder named templates is not a library's unless a catalog sits beside it.
    let templates = folder.file("templates")
    try FileManager.default.createDirectory(atPath: templates, withIntermediateDirectories: true)
    try run(["disk", "create", templates + "/t.vhd", "--size", "4M"])
    XCTAssertTrue(
      FileManager.default.createFile(atPath: folder.file("patch.bin"), contents: Data(repeating: 1, count: 512)))
    try run(["disk", "write", templates + "/t.vhd", "--input", "patch.bin"])
    try run(["disk", "merge", "a.vhd"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("a.vhd")))
  }
}
