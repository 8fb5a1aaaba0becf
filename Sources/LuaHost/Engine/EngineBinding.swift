import Foundation
import LabKit
import VHD

/// The shared state of the `vmlab` module inside one Lua state: the engine (opened on first use),
/// the classes and list types of engine objects, and the conversions every binding file uses.
///
/// Lifetime: Lua holds the module's functions and the classes' closures, and they hold this
/// binding; the binding holds the classes weakly (Lua keeps them in the registry until the state
/// closes), so nothing forms a cycle that outlives the state.
final class EngineBinding {
  weak var state: LuaState?
  private let openEngine: () throws -> any LabEngine
  private var openedEngine: (any LabEngine)?

  weak var vmClass: LuaClass<VMHandle>?
  weak var checkpointClass: LuaClass<CheckpointHandle>?
  weak var labClass: LuaClass<LabHandle>?
  weak var jobClass: LuaClass<JobHandle>?
  weak var diskClass: LuaClass<DiskHandle>?
  /// What Disk properties read, kept while the files stay the same.
  let diskFacts = DiskFacts()

  /// False in a sandbox: functions that name files by path (`vmlab.disk`, `vm.create{from=}`,
  /// `checkpoint:export`) are refused, so an untrusted script reaches only the library's own VMs.
  let fileAccess: Bool

  /// Where the jobs the script queues are recorded (nil: nobody asks).
  let queuedJobs: QueuedJobs?

  init(
    state: LuaState, openEngine: @escaping () throws -> any LabEngine, fileAccess: Bool = true,
    queuedJobs: QueuedJobs? = nil
  ) {
    self.state = state
    self.openEngine = openEngine
    self.fileAccess = fileAccess
    self.queuedJobs = queuedJobs
  }

  /// Throws when `what` would touch the file system by path and the state is sandboxed.
  func requireFileAccess(_ what: String) throws {
    guard fileAccess else {
      throw LabKitError(
        .invalidState, "\(what) is not available with --sandbox: it reads or writes files by path")
    }
  }

  /// The engine (a library), opened the first time a script touches VMs, checkpoints, labs or jobs
  /// (disk-only scripts never open one).
  var engine: any LabEngine {
    get throws {
      // Every engine call comes through here, and may change VHD files that Disk handles name.
      diskFacts.mayHaveChanged()
      if let openedEngine { return openedEngine }
      do {
        let engine = try openEngine()
        openedEngine = engine
        return engine
      } catch {
        throw EngineError("cannot open the vmlab library: \(error)")
      }
    }
  }

  /// Whether the engine was opened (for tests and the command line).
  var isLibraryOpen: Bool { openedEngine != nil }

  // MARK: Lists

  /// List type names: each has `where(fn)` and the methods its binding file adds.
  enum ListKind: String {
    case vms = "VMs"
    case checkpoints = "Checkpoints"
    case labs = "Labs"
    case jobs = "Jobs"
    case disks = "Disks"
    case plain = "List"
  }

  func listType(_ kind: ListKind) throws -> LuaListType {
    guard let state, state.isOpen else { throw EngineError("the Lua state is closing") }
    return state.listType(named: kind.rawValue)
  }

  func list(_ kind: ListKind, _ items: [LuaValue]) throws -> LuaValue {
    .table(try listType(kind).makeList(items))
  }

  /// A plain table with string fields.
  func table(_ fields: [String: LuaValue]) throws -> LuaValue {
    guard let state, state.isOpen else { throw EngineError("the Lua state is closing") }
    return .table(state.newTable(fields: fields))
  }

  func strings(_ items: [String]) throws -> LuaValue {
    try list(.plain, items.map { .text($0) })
  }

  // MARK: Wrapping

  /// A class the binding defined (nil only while the state closes).
  func defined<Payload>(_ luaClass: LuaClass<Payload>?) throws -> LuaClass<Payload> {
    guard let luaClass else { throw EngineError("the Lua state is closing") }
    return luaClass
  }

  /// What a handle (an id and the name it had) names now, or a clear error when that object was
  /// removed, even if another one has taken its name since.
  func current<Object>(
    _ kind: String, named name: String, id: Int64, lookup: (String) throws -> Object, id objectID: (Object) -> Int64
  ) throws -> Object {
    let object: Object
    do {
      object = try lookup(name)
    } catch let error as LabKitError where error.kind == .notFound {
      throw EngineError("\(kind) '\(name)' no longer exists (it was removed)")
    }
    guard objectID(object) == id else {
      throw EngineError("\(kind) '\(name)' no longer exists (it was removed; another \(kind) has its name now)")
    }
    return object
  }

  /// A value's type as messages name it: the class for engine objects.
  func typeName(_ value: LuaValue) -> String {
    if vmClass?.payload(of: value) != nil { return "VM" }
    if checkpointClass?.payload(of: value) != nil { return "Checkpoint" }
    if labClass?.payload(of: value) != nil { return "Lab" }
    if jobClass?.payload(of: value) != nil { return "Job" }
    if diskClass?.payload(of: value) != nil { return "Disk" }
    return value.typeName
  }

  // MARK: Formatting

  /// Times as scripts print them: local time, to the second.
  static func format(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone.current
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
  }
}

/// An error the binding itself raises (a stale handle, a refused bulk operation, a bad option); its
/// description is the whole Lua error message.
struct EngineError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

// MARK: - Reading arguments

extension LuaArguments {
  /// Refuses option tables with keys the function does not know: a misspelt `whatif=true` must
  /// not run the destructive operation it was meant to preview.
  func checkOptions(_ position: Int, allowed: [String]) throws {
    guard !isNil(position) else { return }
    let options = try table(position)
    var unknown: [String] = []
    options.forEach { key, _ in
      if let name = key.stringValue, allowed.contains(name) { return }
      if case .integer = key, allowed.contains("[1]") { return }
      unknown.append(key.stringValue.map { "'\($0)'" } ?? "[\(key)]")
    }
    if !unknown.isEmpty {
      let known = allowed.filter { $0 != "[1]" }.joined(separator: ", ")
      throw error(
        position,
        "unknown option\(unknown.count > 1 ? "s" : "") \(unknown.sorted().joined(separator: ", ")); known options: \(known)"
      )
    }
  }

  /// Field `name` of option table `position`, or nil when the table or the field is absent.
  func option<Value: LuaValueConvertible>(_ position: Int, _ name: String, as type: Value.Type) throws -> Value? {
    guard !isNil(position) else { return nil }
    let value = try field(position, name)
    if value.isNil { return nil }
    guard let converted = Value.from(value) else {
      throw error(position, "field '\(name)': \(Value.luaTypeName) expected, got \(value.typeName)")
    }
    return converted
  }

  /// A boolean option (absent: false). Any Lua value counts by its truth, as Lua conditions do.
  func flag(_ position: Int, _ name: String) throws -> Bool {
    guard !isNil(position) else { return false }
    return try field(position, name).isTruthy
  }

  /// A required string field of option table `position`.
  func requiredString(_ position: Int, _ name: String) throws -> String {
    guard let value = try option(position, name, as: String.self) else {
      throw error(position, "field '\(name)': string expected, got nil")
    }
    return value
  }

  /// Argument `position` as either a string or an option table: `f("name")` or `f{name=...}`.
  func stringOrOptions(_ position: Int) -> Bool {
    self[position].stringValue != nil
  }
}

/// A size written as a number of bytes or as text people type ("8G", "512M").
func byteCount(_ value: LuaValue, what: String) throws -> UInt64 {
  if let number = value.intValue {
    guard number >= 0 else { throw EngineError("\(what) cannot be negative (\(number))") }
    return UInt64(number)
  }
  if let text = value.stringValue { return try ByteCount.parse(text) }
  throw EngineError("\(what): a size (a number of bytes or text like \"8G\") expected, got \(value.typeName)")
}

/// A non-negative integer argument that fits UInt64 (an offset).
func offset(_ arguments: LuaArguments, _ position: Int) throws -> UInt64 {
  let value = try arguments.int(position)
  guard value >= 0 else { throw arguments.error(position, "offset cannot be negative") }
  return UInt64(value)
}

extension LuaValue {
  init(_ value: UInt64) {
    self = value <= UInt64(Int64.max) ? .integer(Int64(value)) : .number(Double(value))
  }
}
