import Foundation
import TestSupport
import XCTest

/// `vmlab vm export` then `vmlab vm import`: the VM comes back as it was — its disks in order (ten
/// or more of them), its checkpoints with their names, its settings.
final class ExportImportTests: XCTestCase {
  private var folder: TemporaryFolder!
  private var library: [String] { ["--library", folder.file("library")] }

  override func setUp() {
    folder = TemporaryFolder()
  }

  @discardableResult
  private func run(_ arguments: [String], expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line)
    throws -> CommandResult
  {
    let result = try vmlab(arguments + library, in: folder.path)
    XCTAssertFalse(result.signaled, "vmlab crashed: \(result.error)", file: file, line: line)
    XCTAssertEqual(result.status, status, "\(arguments): \(result.output) \(result.error)", file: file, line: line)
    return result
  }

  /// The first 8 bytes of each disk of `vm`, in slot order, read through the engine.
  private func signatures(_ vm: String, disks: Int) throws -> [String] {
    let script = "local vm = vmlab.vm.get('\(vm)') for i = 1, \(disks) do print(vm:read(i, 0, 8)) end"
    return try run(["run", "-e", script]).output.split(separator: "\n").map(String.init)
  }

  private func checkpoints(_ vm: String) throws -> [[String: Any]] {
    try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(try run(["checkpoint", "list", "--vm", vm, "--json"]).output.utf8))
        as? [[String: Any]])
  }

  /// A VM with 11 disks, each marked with its number, on a hypervisor host with additions, and two
  /// checkpoints: `first` (marks `v1-NN`) and `second` (marks `v2-NN`); it now reads `v3-NN`.
  private func makeElevenDiskVM() throws {
    try run(
      ["vm", "create", "big", "--additions", "--host-kind", "hypervisor"]
        + (1...11).flatMap { _ in ["--disk", "1M"] })
    let mark = """
      local vm = vmlab.vm.get('big') vm:start()
      local function mark(round) for i = 1, 11 do vm:write(i, 0, string.format('v%d-%02d   ', round, i)) end end
      mark(1) vm:checkpoint { name = 'first', description = 'before the exercise' }
      mark(2) vm:checkpoint { name = 'second' }
      mark(3) vm:turnOff()
      """
    try run(["run", "-e", mark])
  }

  private func marks(_ round: Int) -> [String] { (1...11).map { String(format: "v%d-%02d   ", round, $0) } }

  func testAnExportedVMImportsAsItWas() throws {
    try makeElevenDiskVM()
    XCTAssertEqual(try signatures("big", disks: 11), marks(3))
    let exported = folder.file("export")
    try run(["vm", "export", "big", exported])
    XCTAssertTrue(FileManager.default.fileExists(atPath: exported + "/vm.json"))

    try run(["vm", "import", "copy", "--from", exported])
    XCTAssertEqual(try signatures("copy", disks: 11), marks(3), "every disk in its slot, reading what it did")
    let shown = try parseJSON(try run(["vm", "show", "copy", "--json"]).output)
    XCTAssertEqual(shown["additions"] as? Bool, true)
    XCTAssertEqual(shown["hostKind"] as? String, "hypervisor")
    XCTAssertEqual(shown["state"] as? String, "stopped")
    let disks = try XCTUnwrap(shown["disks"] as? [[String: Any]])
    XCTAssertEqual(disks.compactMap { $0["slot"] as? Int }, Array(1...11))
    XCTAssertTrue(
      disks.allSatisfy {
        ($0["chain"] as? [String])?.allSatisfy { $0.hasPrefix(self.folder.file("library/vms/copy/")) } ?? false
      },
      "every file copied into the library: \(disks)")

    let listed = try checkpoints("copy")
    XCTAssertEqual(listed.compactMap { $0["name"] as? String }, ["first", "second"])
    XCTAssertEqual(listed.first?["description"] as? String, "before the exercise")
    XCTAssertEqual(listed.compactMap { $0["isCurrent"] as? Bool }, [false, true])

    // The checkpoints work: each restores its own data, on every disk.
    try run(["checkpoint", "restore", "first", "--vm", "copy"])
    XCTAssertEqual(try signatures("copy", disks: 11), marks(1))
    try run(["checkpoint", "restore", "second", "--vm", "copy"])
    XCTAssertEqual(try signatures("copy", disks: 11), marks(2))
    XCTAssertEqual(try signatures("big", disks: 11), marks(3), "the original is untouched")
    try run(["library", "check"])

    // Exporting into a folder that already holds an export replaces nothing.
    let again = try run(["vm", "export", "big", exported], expect: 1)
    XCTAssertTrue(again.error.contains("already exists"), again.error)
  }

  func testAFlattenedExportKeepsTheDiskOrderWithOrWithoutItsDescription() throws {
    try makeElevenDiskVM()
    let flat = folder.file("flat")
    try run(["vm", "export", "big", flat, "--flatten"])
    let files = try FileManager.default.contentsOfDirectory(atPath: flat).filter { $0.hasSuffix(".vhd") }
    XCTAssertEqual(files.count, 11)
    try run(["vm", "import", "flat1", "--from", flat])
    XCTAssertEqual(try signatures("flat1", disks: 11), marks(3))
    XCTAssertEqual(try checkpoints("flat1").count, 0, "a flattened export has no checkpoints")
    XCTAssertEqual(try parseJSON(try run(["vm", "show", "flat1", "--json"]).output)["additions"] as? Bool, true)

    // A folder of VHDs from elsewhere: big-disk2 comes before big-disk10, as numbered.
    try FileManager.default.removeItem(atPath: flat + "/vm.json")
    try run(["vm", "import", "flat2", "--from", flat])
    XCTAssertEqual(try signatures("flat2", disks: 11), marks(3))
    try run(["library", "check"])
  }

  func testADamagedDescriptionIsRefusedBeforeAnythingIsCopied() throws {
    try run(["vm", "create", "small", "--disk", "1M", "--disk", "1M"])
    try run(["checkpoint", "new", "small", "c1"])
    let exported = folder.file("export")
    try run(["vm", "export", "small", exported])
    let manifestPath = exported + "/vm.json"
    let original = try String(contentsOfFile: manifestPath, encoding: .utf8)
    let cases: [(String, String, String)] = [
      ("not JSON", "{ broken", "is not a vmlab export description"),
      (
        "a path", original.replacingOccurrences(of: "\"small-disk1.vhd\"", with: "\"../small-disk1.vhd\""),
        "not a file name"
      ),
      (
        "a missing file", original.replacingOccurrences(of: "\"small-disk2.vhd\"", with: "\"gone.vhd\""),
        "not in the folder"
      ),
    ]
    for (what, text, message) in cases {
      try text.write(toFile: manifestPath, atomically: true, encoding: .utf8)
      let result = try run(["vm", "import", "copy", "--from", exported], expect: 1)
      XCTAssertTrue(result.error.contains(message), "\(what): \(result.error)")
      XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/copy")), what)
    }
    // Disk files swapped under their names: the unique ids say so.
    try original.write(toFile: manifestPath, atomically: true, encoding: .utf8)
    let first = exported + "/small-disk1.vhd"
    let second = exported + "/small-disk2.vhd"
    try FileManager.default.moveItem(atPath: first, toPath: exported + "/swap")
    try FileManager.default.moveItem(atPath: second, toPath: first)
    try FileManager.default.moveItem(atPath: exported + "/swap", toPath: second)
    let result = try run(["vm", "import", "copy", "--from", exported], expect: 1)
    XCTAssertTrue(result.error.contains("unique id"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("library/vms/copy")))
    try run(["library", "check"])
  }
}
