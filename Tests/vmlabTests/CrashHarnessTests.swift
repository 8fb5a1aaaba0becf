import Foundation
import TestSupport
import VHD
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Crash safety with real processes: a `vmlab` child process runs a multi-file operation and is
/// killed with SIGKILL at a random moment; the library is then reopened (any vmlab command recovers)
/// and must be sound: `library check` exits 0, no file is missing or orphaned, and every disk of
/// every VM reads exactly as before the operation or exactly as after it, the same side for all the
/// disks of a VM (and, for a lab restore, for all the VMs of the lab).
///
/// Each scenario prepares a template library once, measures how long the operation's process lives
/// (and how long a process takes to open the library and reach the operation), then for each seed
/// copies the template, starts the operation, and kills it after a delay drawn over that window.
/// `VMLAB_CRASH_SEEDS=N` runs N seeds per scenario instead of the defaults (sized so that the suite
/// takes about a minute in a debug build on two cores).
final class CrashHarnessTests: XCTestCase {
  private var folder: TemporaryFolder!

  override func setUp() {
    folder = TemporaryFolder()
  }

  /// A checkpoint of a running 3-disk VM on a hypervisor host: three differencing disks and the saved
  /// running state (`.vsv`) appear together, or nothing does.
  func testCheckpointOfAThreeDiskVMSurvivesSIGKILL() throws {
    try runScenario(
      CrashScenario(
        name: "checkpoint", defaultSeeds: 25,
        setup: """
          local vm = vmlab.vm.create{name = "cp", disks = {"16M", "16M", "16M"}, host = "hypervisor"}
          vm:start()
          for slot = 1, 3 do vm:write(slot, (slot - 1) * 3145728, string.rep(string.char(96 + slot), 1048576)) end
          vm:checkpoint("first")
          for slot = 1, 3 do vm:write(slot, 4096, string.rep(string.char(64 + slot), 600000)) end
          """,
        operation: ["checkpoint", "new", "cp", "second"],
        expectChange: { before, after in
          XCTAssertEqual(before["cp"]?.contents, after["cp"]?.contents, "a checkpoint changes no data")
          XCTAssertEqual(after["cp"]?.checkpoints, ["first", "second"])
        }))
  }

  /// A restore of a saved 3-disk VM whose disks changed since the checkpoint: every disk reads the
  /// checkpoint's data, or every disk still reads the newer data; the saved state (`saved.vsv`) is
  /// there exactly while the catalog says the VM is saved.
  func testRestoreOfAThreeDiskVMSurvivesSIGKILL() throws {
    try runScenario(
      CrashScenario(
        name: "restore", defaultSeeds: 25,
        setup: """
          local vm = vmlab.vm.create{name = "rs", disks = {"16M", "16M", "16M"}}
          vm:start()
          for slot = 1, 3 do vm:write(slot, 0, string.rep(string.char(96 + slot), 2097152)) end
          vm:checkpoint("clean")
          for slot = 1, 3 do vm:write(slot, slot * 1048576, string.rep(string.char(64 + slot), 3145728)) end
          vm:save()
          """,
        operation: ["checkpoint", "restore", "clean", "--vm", "rs"],
        expectChange: { before, after in
          let old = try XCTUnwrap(before["rs"]), new = try XCTUnwrap(after["rs"])
          for slot in 0..<3 { XCTAssertNotEqual(old.contents[slot], new.contents[slot], "disk \(slot + 1) changes") }
        }))
  }

  /// A merge of a checkpoint whose differencing disks hold 40 MiB of changes: the copy into the
  /// disk below takes long enough for most kills to land inside it. Nothing the VM reads changes, and
  /// a merge that started is finished when the library is reopened.
  func testMergeOfALargeDifferencingDiskSurvivesSIGKILL() throws {
    try runScenario(
      CrashScenario(
        name: "merge", defaultSeeds: 20,
        setup: """
          local vm = vmlab.vm.create{name = "mg", disks = {"64M", "32M"}}
          vm:start()
          vm:write(1, 0, string.rep("b", 4194304))
          vm:checkpoint("base")
          local chunk = {}
          for i = 1, 16 do chunk[i] = string.rep(string.char(64 + i), 65536) end
          chunk = table.concat(chunk)
          for mib = 0, 23 do vm:write(1, 2097152 + mib * 1048576, chunk) end
          for mib = 0, 15 do vm:write(2, mib * 1048576, chunk) end
          """,
        operation: ["checkpoint", "merge", "base", "--vm", "mg"],
        expectChange: { before, after in
          XCTAssertEqual(before["mg"]?.contents, after["mg"]?.contents, "a merge changes no data")
          XCTAssertEqual(after["mg"]?.checkpoints, [])
        }))
  }

  /// A lab restore of 20 VMs is one journaled operation: after a kill, all 20 VMs read their
  /// checkpoint's data, or all 20 still read the newer data.
  func testLabRestoreOfTwentyVMsIsAllOrNothingUnderSIGKILL() throws {
    try runScenario(
      CrashScenario(
        name: "lab restore", defaultSeeds: 12, wholeLibraryOneSide: true,
        setup: """
          local names = {}
          for i = 1, 20 do
            local name = string.format("s%02d", i)
            local vm = vmlab.vm.create{name = name, disks = {"4M", "4M"}}
            vm:start()
            vm:write(1, 0, string.rep(string.char(64 + i), 262144))
            vm:write(2, 2097152, string.rep("x", 131072))
            names[#names + 1] = name
          end
          local lab = vmlab.lab.create{name = "class", vms = names}
          lab:checkpoint("clean")
          for _, vm in ipairs(vmlab.vms()) do
            vm:write(1, 131072, string.rep("B", 300000))
            vm:write(2, 0, string.rep("C", 100000))
          end
          """,
        operation: ["lab", "restore", "class", "clean"],
        expectChange: { before, after in
          XCTAssertEqual(after.count, 20)
          for (name, state) in after { XCTAssertNotEqual(before[name]?.contents, state.contents, name) }
        }))
  }

  /// A lab checkpoint of 16 running VMs (two disks each) is one journaled operation at one moment:
  /// after a kill, all 16 VMs have the checkpoint or none has, and the library reopens clean.
  func testLabCheckpointOfSixteenVMsIsAllOrNothingUnderSIGKILL() throws {
    try runScenario(
      CrashScenario(
        name: "lab checkpoint", defaultSeeds: 12, wholeLibraryOneSide: true,
        setup: """
          local names = {}
          for i = 1, 16 do
            local name = string.format("s%02d", i)
            local vm = vmlab.vm.create{name = name, disks = {"4M", "4M"}, host = i % 2 == 0 and "hypervisor" or nil}
            vm:start()
            vm:write(1, 0, string.rep(string.char(64 + i), 262144))
            names[#names + 1] = name
          end
          vmlab.lab.create{name = "class", vms = names}:checkpoint("before")
          for _, vm in ipairs(vmlab.vms()) do vm:write(2, 65536, string.rep("W", 200000)) end
          """,
        operation: ["lab", "checkpoint", "class", "clean"],
        expectChange: { before, after in
          XCTAssertEqual(after.count, 16)
          for (name, state) in after {
            XCTAssertEqual(before[name]?.contents, state.contents, "\(name): a checkpoint changes no data")
            XCTAssertEqual(state.checkpoints, ["before", "clean"], name)
          }
        }))
  }

  // MARK: The harness

  private func runScenario(_ scenario: CrashScenario) throws {
    let binary = try VMLabBinary.path
    let seeds =
      ProcessInfo.processInfo.environment["VMLAB_CRASH_SEEDS"].flatMap(Int.init) ?? scenario.defaultSeeds
    let template = folder.file("template")
    let setup = try vmlab(["run", "--library", template, "-e", scenario.setup])
    XCTAssertEqual(setup.status, 0, "setup: \(setup.output)\(setup.error)")
    guard setup.status == 0 else { return }
    let before = try reopen(template, context: "the template")
    let templateFiles = try diskFiles(in: template)

    // Measure, the way the kills start it: the operation's whole process, and a process that only
    // opens the library (the start-up before the operation begins).
    let measured = folder.file("measured")
    var opening: [Double] = []
    var whole: [Double] = []
    for _ in 0..<3 {
      try? FileManager.default.removeItem(atPath: measured)
      try FileManager.default.copyItem(atPath: template, toPath: measured)
      opening.append(try timed { try spawn(binary, ["job", "list", "--library", measured]).waitUntilExit() })
      try? FileManager.default.removeItem(atPath: measured)
      try FileManager.default.copyItem(atPath: template, toPath: measured)
      var process: ChildProcess?
      whole.append(
        try timed {
          process = try spawn(binary, scenario.operation + ["--library", measured])
          process?.waitUntilExit()
        })
      XCTAssertEqual(process?.exitStatus, 0, "the operation itself failed")
    }
    let start = opening.sorted()[1]
    let end = whole.sorted()[1]
    let after = try reopen(measured, context: "after the operation")
    try scenario.expectChange(before, after)

    var tally = CrashTally()
    let work = folder.file("work")
    // The window the kills are drawn from: from the end of start-up to the end of the process,
    // with a margin of a tenth on each side. Timings vary with the machine's load, so the window
    // follows what the kills find: a kill that came too late (the process had finished) pulls its
    // end in, one that came before any file changed pushes its start out.
    var window = (from: start, to: max(end, start + 0.002))
    for seed in 0..<seeds {
      var random = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9 &+ UInt64(scenario.name.utf8.count))
      let span = window.to - window.from
      let delay = max(0, window.from + span * Double.random(in: -0.1...1.1, using: &random))
      try? FileManager.default.removeItem(atPath: work)
      try FileManager.default.copyItem(atPath: template, toPath: work)

      let process = try spawn(binary, scenario.operation + ["--library", work])
      Thread.sleep(forTimeInterval: delay)
      kill(process.pid, SIGKILL)
      process.waitUntilExit()
      let killed = process.signal == SIGKILL
      let context = "\(scenario.name), seed \(seed) (kill after \(Int(delay * 1000)) ms)"
      if killed {
        if try diskFiles(in: work) == templateFiles {
          tally.killedBeforeFiles += 1
          if delay > window.from { window.from += (min(delay, window.to) - window.from) * 0.3 }
        } else {
          tally.killedMidOperation += 1
        }
      } else {
        if delay < window.to { window.to -= (window.to - max(delay, window.from)) * 0.3 }
        XCTAssertEqual(
          process.exitStatus, 0,
          "\(context): the operation failed on its own (signal \(String(describing: process.signal)))")
        tally.finished += 1
      }

      // Reopen: the first command recovers whatever the kill left.
      let now = try reopen(work, context: context)
      let side: Side
      if scenario.wholeLibraryOneSide {
        if now == before {
          side = .before
        } else if now == after {
          side = .after
        } else {
          let mixed = now.keys.sorted().map { name in
            "\(name): \(now[name] == before[name] ? "before" : now[name] == after[name] ? "after" : "neither")"
          }
          XCTFail("\(context): the lab is neither all before nor all after: \(mixed.joined(separator: ", "))")
          continue
        }
      } else {
        var sides: Set<Side> = []
        for name in Set(before.keys).union(after.keys) {
          if now[name] == before[name] {
            sides.insert(.before)
          } else if now[name] == after[name] {
            sides.insert(.after)
          } else {
            XCTFail(
              "\(context): VM \(name) is neither as before nor as after: \(String(describing: now[name])) "
                + "vs before \(String(describing: before[name])) / after \(String(describing: after[name]))")
          }
        }
        guard sides.count == 1, let only = sides.first else {
          if sides.count > 1 { XCTFail("\(context): VMs disagree on the side: \(sides)") }
          continue
        }
        side = only
      }
      if side == .before { tally.rolledBack += 1 } else { tally.rolledForward += 1 }
      if !killed { XCTAssertEqual(side, .after, "\(context): a finished operation is visible") }
    }
    let summary =
      "crash harness \(scenario.name): \(seeds) kills, measured window \(Int(start * 1000))–\(Int(end * 1000)) ms "
      + "(at the end \(Int(window.from * 1000))–\(Int(window.to * 1000)) ms): "
      + "\(tally.killedMidOperation) mid-operation (files changed), \(tally.killedBeforeFiles) before any file changed, "
      + "\(tally.finished) after completion; afterwards \(tally.rolledBack) as before, \(tally.rolledForward) as after"
    print(summary)
    if let report = ProcessInfo.processInfo.environment["VMLAB_CRASH_REPORT"] {
      let handle =
        FileHandle(forWritingAtPath: report)
        ?? {
          XCTAssertTrue(FileManager.default.createFile(atPath: report, contents: nil))
          return FileHandle(forWritingAtPath: report)!
        }()
      handle.seekToEndOfFile()
      handle.write(Data((summary + "\n").utf8))
      try? handle.close()
    }
  }

  /// Reopens the library: `library check` must exit 0 (its opening finishes or rolls back what a
  /// crash left), the files under the library must be exactly those the catalog names (no orphan,
  /// none missing). Returns what the VMs read then.
  private func reopen(_ library: String, context: String, file: StaticString = #filePath, line: UInt = #line) throws
    -> [String: VMObservation]
  {
    let check = try vmlab(["library", "check", "--library", library])
    XCTAssertFalse(check.signaled, "\(context): library check crashed", file: file, line: line)
    XCTAssertEqual(check.status, 0, "\(context): library check: \(check.output)\(check.error)", file: file, line: line)
    let vms = try parseJSONArray(try vmlab(["vm", "list", "--json", "--library", library]).output)
    let checkpoints = try parseJSONArray(try vmlab(["checkpoint", "list", "--json", "--library", library]).output)
    let root = URL(fileURLWithPath: library).standardizedFileURL.path
    var expected: Set<String> = []
    var result: [String: VMObservation] = [:]
    for vm in vms {
      let name = try XCTUnwrap(vm["name"] as? String)
      expected.insert("vms/\(name)/vm.json")
      if vm["state"] as? String == "saved" { expected.insert("vms/\(name)/saved.vsv") }
      var observation = VMObservation(
        contents: [], depths: [],
        checkpoints: checkpoints.filter { $0["vm"] as? String == name }.compactMap { $0["name"] as? String }.sorted())
      for disk in try XCTUnwrap(vm["disks"] as? [[String: Any]]) {
        for path in try XCTUnwrap(disk["chain"] as? [String]) { expected.insert(relative(path, to: root)) }
        let chain = try DiskChain.open(try XCTUnwrap(disk["path"] as? String))
        defer { chain.close() }
        observation.contents.append(try digest(chain))
        observation.depths.append(chain.depth)
      }
      result[name] = observation
    }
    for checkpoint in checkpoints where checkpoint["online"] as? Bool == true {
      expected.insert("vms/\(checkpoint["vm"] as! String)/\(checkpoint["stamp"] as! String).vsv")
    }
    let present = try filesUnder(root, in: ["vms", "templates"])
    let orphans = present.subtracting(expected)
    let missing = expected.subtracting(present)
    XCTAssertTrue(orphans.isEmpty, "\(context): orphan files \(orphans.sorted())", file: file, line: line)
    XCTAssertTrue(missing.isEmpty, "\(context): missing files \(missing.sorted())", file: file, line: line)
    let top = Set(try FileManager.default.contentsOfDirectory(atPath: root))
    let allowed: Set<String> = [
      "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "library.lock", "labs.json", "vms", "templates",
    ]
    XCTAssertTrue(
      top.isSubset(of: allowed), "\(context): stray files at the top: \(top.subtracting(allowed).sorted())",
      file: file, line: line)
    return result
  }

  private func digest(_ chain: DiskChain) throws -> ContentDigest {
    var hasher = Hasher()
    let block = 4 << 20
    var buffer = [UInt8](repeating: 0, count: block)
    var offset: UInt64 = 0
    var nonZero = 0
    while offset < chain.size {
      let count = Int(min(UInt64(block), chain.size - offset))
      try buffer.withUnsafeMutableBytes { raw in
        let slice = UnsafeMutableRawBufferPointer(rebasing: raw[..<count])
        try chain.read(at: offset, into: slice)
        hasher.combine(bytes: UnsafeRawBufferPointer(slice))
        nonZero += count - zeroBytes(UnsafeRawBufferPointer(slice))
      }
      offset += UInt64(count)
    }
    return ContentDigest(hash: hasher.finalize(), nonZeroBytes: nonZero)
  }

  /// Zero bytes in a buffer, counted a word at a time (the test is built for debugging).
  private func zeroBytes(_ buffer: UnsafeRawBufferPointer) -> Int {
    // Whole 4 KiB pages compared with memcmp against a zero page; only mixed pages are counted.
    let page = 4096
    var zeros = 0
    var index = 0
    let zeroPage = [UInt8](repeating: 0, count: page)
    zeroPage.withUnsafeBytes { zero in
      while index + page <= buffer.count {
        if memcmp(buffer.baseAddress! + index, zero.baseAddress!, page) == 0 { zeros += page }
        index += page
      }
    }
    return zeros + buffer[index...].filter { $0 == 0 }.count
  }

  /// The disk files of a library (names and sizes), to tell whether a killed process had begun.
  private func diskFiles(in library: String) throws -> [String: UInt64] {
    var result: [String: UInt64] = [:]
    for path in try filesUnder(library, in: ["vms", "templates"]) {
      let attributes = try FileManager.default.attributesOfItem(atPath: library + "/" + path)
      result[path] = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
    }
    return result
  }

  private func filesUnder(_ root: String, in folders: [String]) throws -> Set<String> {
    var result: Set<String> = []
    for top in folders {
      guard let enumerator = FileManager.default.enumerator(atPath: root + "/" + top) else { continue }
      while let item = enumerator.nextObject() as? String {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/" + top + "/" + item, isDirectory: &isFolder),
          !isFolder.boolValue
        {
          result.insert(top + "/" + item)
        }
      }
    }
    return result
  }

  private func relative(_ path: String, to root: String) -> String {
    path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : path
  }

  /// Starts a process with its output discarded. (posix_spawn and waitpid rather than Foundation's
  /// Process, whose waitUntilExit polls every 50 ms: too coarse to time an operation.)
  private func spawn(_ binary: String, _ arguments: [String]) throws -> ChildProcess {
    try ChildProcess(binary, arguments)
  }

  private func timed(_ body: () throws -> Void) rethrows -> Double {
    let start = Date()
    try body()
    return Date().timeIntervalSince(start)
  }
}

/// One crash scenario: how to build the library, the operation to kill, and what the operation
/// must change when it runs to the end.
struct CrashScenario {
  var name: String
  var defaultSeeds: Int
  /// For a lab: the whole library is before or after, never some VMs of each.
  var wholeLibraryOneSide = false
  /// A Lua chunk run by `vmlab run -e` on an empty library.
  var setup: String
  var operation: [String]
  var expectChange: ([String: VMObservation], [String: VMObservation]) throws -> Void
}

struct ContentDigest: Equatable, CustomStringConvertible {
  var hash: Int
  var nonZeroBytes: Int
  var description: String { "\(nonZeroBytes) non-zero bytes, hash \(String(UInt(bitPattern: hash), radix: 16))" }
}

struct VMObservation: Equatable {
  var contents: [ContentDigest]
  var depths: [Int]
  var checkpoints: [String]
}

private enum Side: Hashable {
  case before
  case after
}

private struct CrashTally {
  var killedBeforeFiles = 0
  var killedMidOperation = 0
  var finished = 0
  var rolledBack = 0
  var rolledForward = 0
}

typealias SplitMix64 = SeededBytes

/// A child process started with posix_spawn, its output sent to /dev/null.
final class ChildProcess {
  let pid: pid_t
  private(set) var exitStatus: Int32?
  private(set) var signal: Int32?

  init(_ executable: String, _ arguments: [String]) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    let status = posix_spawn(&child, executable, &actions, nil, argv, environ)
    guard status == 0 else {
      throw NSError(
        domain: NSPOSIXErrorDomain, code: Int(status),
        userInfo: [NSLocalizedDescriptionKey: "posix_spawn \(executable)"])
    }
    pid = child
  }

  func waitUntilExit() {
    guard exitStatus == nil && signal == nil else { return }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WTERMSIG are C macros: decode the status by hand.
    if status & 0x7f == 0 {
      exitStatus = (status >> 8) & 0xff
    } else {
      signal = status & 0x7f
    }
  }
}
