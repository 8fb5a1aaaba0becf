import Foundation
import LuaHost
import VHD
import XCTest

/// `vmlab.disk` and the Disk class: VHD files without a library.
final class EngineDiskTests: EngineTestCase {
  func testCreateDynamicAndFixedDisksWithoutALibrary() throws {
    let results = try lua(
      """
      local d = vmlab.disk.create{path=folder .. "/a.vhd", size="16M"}
      local f = vmlab.disk.create{path=folder .. "/f.vhd", size=1048576, type="fixed"}
      return d.path, d.size, d.type, d.parent, #d.chain, f.type, f.size, tostring(d)
      """)
    XCTAssertEqual(
      results,
      [
        // Sizes rounded up to whole CHS geometries (482/4/17 and 31/4/17), as qemu-img rounds them.
        .text(folder + "/a.vhd"), 16_781_312, "dynamic", nil, 1, "fixed", 1_079_296,
        .text("Disk \(folder!)/a.vhd (dynamic, 16 MiB)"),
      ])
    XCTAssertEqual(libraryOpens, 0, "disk functions must not open a library")
    XCTAssertEqual(try VirtualDisk.open(folder + "/f.vhd").type, .fixed)
  }

  func testRelativePathsAreRelativeToTheWorkingDirectory() throws {
    let previous = FileManager.default.currentDirectoryPath
    FileManager.default.changeCurrentDirectoryPath(folder)
    defer { FileManager.default.changeCurrentDirectoryPath(previous) }
    let path = try text(#"return vmlab.disk.create{path="sub/../rel.vhd", size="1M"}.path"#)
    XCTAssertEqual(path, URL(fileURLWithPath: folder + "/rel.vhd").standardizedFileURL.path)
    XCTAssertTrue(path.hasPrefix("/"))
    XCTAssertEqual(try text(#"return vmlab.disk.open("rel.vhd").path"#), path)
  }

  func testDifferencingDisksReadWriteChainAndInfo() throws {
    let results = try lua(
      """
      local base = vmlab.disk.create{path=folder .. "/base.vhd", size="8M"}
      base:write(0, "base")
      local child = vmlab.disk.create{path=folder .. "/child.vhd", parent=base}
      local grandchild = vmlab.disk.create{path=folder .. "/gc.vhd", parent=folder .. "/child.vhd"}
      local written = grandchild:write(512, "leaf")
      local info = grandchild:info()
      return grandchild.type, grandchild.parent.path, grandchild.chain[1], grandchild.chain[3], #grandchild.chain,
        grandchild:read(0, 4), grandchild:read(512, 4), child:read(512, 4) == "\\0\\0\\0\\0", written,
        info.type, info.size, #info.chain, info.chain[3].path, info.allocatedBytes > 0, grandchild.chain:where(
          function(p) return p:find("child") end)[1]
      """)
    let expected: [LuaValue] = [
      "differencing", .text(folder + "/child.vhd"), .text(folder + "/gc.vhd"), .text(folder + "/base.vhd"), 3, "base",
      "leaf", true, 4, "differencing", 8_390_656, 3, .text(folder + "/base.vhd"), true, .text(folder + "/child.vhd"),
    ]
    XCTAssertEqual(results, expected)
  }

  func testMergeReturnsTheParentAndLeavesAStaleHandle() throws {
    let results = try lua(
      """
      local base = vmlab.disk.create{path=folder .. "/base.vhd", size="8M"}
      local child = vmlab.disk.create{path=folder .. "/child.vhd", parent=base}
      child:write(4096, "merged data")
      local parent, report = child:merge()
      return parent.path, parent:read(4096, 11), report.bytesMerged > 0, report.childRemoved, tostring(child)
      """)
    XCTAssertEqual(
      results,
      [
        .text(folder + "/base.vhd"), "merged data", true, true,
        .text("Disk \(folder!)/child.vhd (merged into \(folder!)/base.vhd)"),
      ])
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/child.vhd"))
    assertError(
      #"local d = vmlab.disk.open(folder .. "/base.vhd"); local c = vmlab.disk.create{path=folder .. "/c2.vhd", parent=d}; c:merge(); return c.size"#,
      contains: "c2.vhd was merged into")
  }

  func testMergeRefusesWhenTheParentHasOtherChildrenUnlessForced() throws {
    try lua(
      """
      base = vmlab.disk.create{path=folder .. "/base.vhd", size="8M"}
      one = vmlab.disk.create{path=folder .. "/one.vhd", parent=base}
      two = vmlab.disk.create{path=folder .. "/two.vhd", parent=base}
      """)
    assertError("one:merge()", contains: "other disks use the same parent")
    XCTAssertEqual(try lua("local p = one:merge{force=true}; return p.path"), [.text(folder + "/base.vhd")])
  }

  func testClosedHandlesAndBadArgumentsGiveClearErrors() throws {
    try lua(#"d = vmlab.disk.create{path=folder .. "/a.vhd", size="1M"}"#)
    XCTAssertEqual(
      try lua("d:close(); return d.closed, d.path, tostring(d)"),
      [true, .text(folder + "/a.vhd"), .text("Disk \(folder!)/a.vhd (closed)")])
    assertError("return d:read(0, 1)", contains: "is closed; open it again with vmlab.disk.open")
    assertError(#"vmlab.disk.create{path=folder .. "/b.vhd"}"#, contains: "field 'size' (or 'parent') is required")
    assertError(
      #"vmlab.disk.create{path=folder .. "/b.vhd", size="1M", type="weird"}"#, contains: "\"dynamic\" or \"fixed\"")
    assertError(#"vmlab.disk.create{path=folder .. "/b.vhd", size="lots"}"#, contains: "lots")
    assertError(#"vmlab.disk.create{path=folder .. "/b.vhd", size="1M", sise=3}"#, contains: "unknown option 'sise'")
    assertError(#"vmlab.disk.create{size="1M"}"#, contains: "field 'path': string expected, got nil")
    assertError(#"vmlab.disk.create{path=folder .. "/a.vhd", size="1M"}"#, contains: "a.vhd")  // exists
    assertError(#"vmlab.disk.open(folder .. "/missing.vhd")"#, contains: "missing.vhd")
    assertError(
      #"local d = vmlab.disk.open(folder .. "/a.vhd"); return d:read(-1, 1)"#, contains: "offset cannot be negative")
    assertError(
      #"local d = vmlab.disk.open(folder .. "/a.vhd"); return d.sise"#, contains: "Disk has no field or method 'sise'")
    assertError(#"local d = vmlab.disk.open(folder .. "/a.vhd"); return d.read(0, 1)"#, contains: "bad self")
    // Engine errors are ordinary Lua errors: pcall catches them and the script goes on.
    XCTAssertEqual(
      try lua(#"local ok, message = pcall(vmlab.disk.open, folder .. "/missing.vhd"); return ok, type(message)"#),
      [false, "string"])
    XCTAssertEqual(libraryOpens, 0)
  }

  /// Properties are kept between reads, but never past a change of the file: one put in its place
  /// (a new inode), one rewritten in place, a parent that changed, one removed. A change this
  /// process makes through vmlab shows at once; one made behind vmlab's back (by another process,
  /// here by Swift code) within a millisecond, which `settle` waits for with a deadline.
  func testPropertiesFollowTheFileBehindTheHandle() throws {
    try lua(
      """
      d = vmlab.disk.create{path=folder .. "/a.vhd", size="8M"}
      function settle(read, expected)
        local deadline = vmlab.clock() + 10
        local value = read()
        while value ~= expected and vmlab.clock() < deadline do value = read() end
        return value
      end
      """)
    // Sizes are whole CHS geometries: 8 MiB is 8,390,656 bytes, 16 MiB 16,781,312, 4 MiB 4,212,736.
    XCTAssertEqual(try lua("return d.size, d.type, #d.chain"), [8_390_656, "dynamic", 1])
    // Replaced by rename, as editors and copies do: another file, another size.
    try VirtualDisk.create(at: folder + "/b.vhd", size: 16 << 20, type: .fixed).close()
    try FileManager.default.removeItem(atPath: folder + "/a.vhd")
    try FileManager.default.moveItem(atPath: folder + "/b.vhd", toPath: folder + "/a.vhd")
    XCTAssertEqual(
      try lua("return settle(function() return d.size end, 16781312), d.type, #d.chain, tostring(d)"),
      [16_781_312, "fixed", 1, .text("Disk \(folder!)/a.vhd (fixed, 16 MiB)")])
    // Removed and made again in place (the inode may well be the same one): a differencing disk now.
    try VirtualDisk.create(at: folder + "/base.vhd", size: 4 << 20).close()
    try FileManager.default.removeItem(atPath: folder + "/a.vhd")
    try VirtualDisk.createDifferencing(at: folder + "/a.vhd", parent: folder + "/base.vhd").close()
    XCTAssertEqual(
      try lua("return settle(function() return d.type end, 'differencing'), d.size, #d.chain, d.parent.path"),
      ["differencing", 4_212_736, 2, .text(folder + "/base.vhd")])
    try FileManager.default.removeItem(atPath: folder + "/a.vhd")
    XCTAssertEqual(
      try lua(
        """
        return settle(function() return (pcall(function() return d.size end)) end, false),
          settle(function() return (pcall(function() return d.chain end)) end, false)
        """), [false, false])
    assertError("return d.size", contains: "a.vhd")
    assertError("return d.chain", contains: "a.vhd")
    // Made again through vmlab, at once: nothing of the old file is trusted.
    XCTAssertEqual(
      try lua(
        """
        local first = vmlab.disk.create{path=folder .. "/c.vhd", size="8M"}
        local before = first.size
        os.remove(folder .. "/c.vhd")
        vmlab.disk.create{path=folder .. "/c.vhd", size="2M", type="fixed"}
        return before, first.size, first.type
        """), [8_390_656, 2_123_776, "fixed"])
  }

  func testRequireGivesTheSameModule() throws {
    XCTAssertEqual(try lua(#"return require("vmlab") == vmlab, type(vmlab.version)"#), [true, "string"])
  }
}
