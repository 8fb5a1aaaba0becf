import Foundation
import GRDB

// The catalog's rows. Paths are relative to the library folder, so a library can be moved.
//
// Each record reads its row and writes its columns by hand (`init(row:)`, `encode(to:)`): GRDB's
// Codable path asks the Swift runtime, for every property, whether its type conforms to GRDB's
// protocols, and on Linux each first such question scans every conformance in the binary. A lab
// restore spent a fifth of its processor time there. The columns are named as the properties are.

struct VMRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "vm"
  var id: Int64?
  var name: String {
    didSet { nameKey = NameRules.key(name) }
  }
  var hostKind: HostKind
  /// vmlab changing the power state forgets that the VM was once found stopped outside it.
  var state: PowerState {
    didSet { if state != oldValue { stoppedOutside = nil } }
  }
  var additions: Bool
  var created: Date
  /// The checkpoint the VM's current state descends from (the parent of its next checkpoint).
  var currentCheckpointID: Int64?
  /// For a saved VM: its memory and devices, a file in the VM's folder.
  var savedMemoryPath: String?
  /// The name of the host that runs it (see `HostRegistry`).
  var host: String = HostRegistry.defaultName
  var memory: Int64 = Int64(Hardware.defaultMemory)
  var cpus: Int = 1
  /// A kernel to boot directly; nil boots the firmware from disk 1.
  var bootKernel: String? = nil
  var bootInitrd: String? = nil
  var bootCommandLine: String? = nil
  var network: Hardware.Network = .none
  var accelerator: Hardware.Accelerator = .auto
  /// When opening the library found the VM stopped although the catalog said it ran.
  var stoppedOutside: Date? = nil
  /// The name as names are compared (`NameRules.key`): lookups by name use it, and its unique
  /// index keeps two VMs from differing only in case. Set whenever the name is.
  var nameKey: String = ""

  enum Columns {
    static let nameKey = Column(CodingKeys.nameKey)
    static let state = Column(CodingKeys.state)
  }

  mutating func willInsert(_ db: Database) throws { nameKey = NameRules.key(name) }
  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  var hardware: Hardware {
    get {
      Hardware(
        memory: UInt64(max(0, memory)), cpus: cpus,
        boot: bootKernel.map { .kernel(path: $0, initrd: bootInitrd, commandLine: bootCommandLine ?? "") } ?? .firmware,
        network: network, accelerator: accelerator)
    }
    set {
      memory = Int64(newValue.memory)
      cpus = newValue.cpus
      switch newValue.boot {
      case .firmware: (bootKernel, bootInitrd, bootCommandLine) = (nil, nil, nil)
      case .kernel(let path, let initrd, let commandLine):
        (bootKernel, bootInitrd, bootCommandLine) = (path, initrd, commandLine)
      }
      network = newValue.network
      accelerator = newValue.accelerator
    }
  }
}

extension VMRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    name = try row.decode(forColumn: "name")
    hostKind = try row.decode(forColumn: "hostKind")
    state = try row.decode(forColumn: "state")
    additions = try row.decode(forColumn: "additions")
    created = try row.date(forColumn: "created")
    currentCheckpointID = try row.decode(forColumn: "currentCheckpointID")
    savedMemoryPath = try row.decode(forColumn: "savedMemoryPath")
    host = try row.decode(forColumn: "host")
    memory = try row.decode(forColumn: "memory")
    cpus = try row.decode(forColumn: "cpus")
    bootKernel = try row.decode(forColumn: "bootKernel")
    bootInitrd = try row.decode(forColumn: "bootInitrd")
    bootCommandLine = try row.decode(forColumn: "bootCommandLine")
    network = try row.decode(forColumn: "network")
    accelerator = try row.decode(forColumn: "accelerator")
    stoppedOutside = try row.optionalDate(forColumn: "stoppedOutside")
    nameKey = try row.decode(forColumn: "nameKey")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["name"] = name
    container["hostKind"] = hostKind
    container["state"] = state
    container["additions"] = additions
    container["created"] = CatalogDate.databaseValue(created)
    container["currentCheckpointID"] = currentCheckpointID
    container["savedMemoryPath"] = savedMemoryPath
    container["host"] = host
    container["memory"] = memory
    container["cpus"] = cpus
    container["bootKernel"] = bootKernel
    container["bootInitrd"] = bootInitrd
    container["bootCommandLine"] = bootCommandLine
    container["network"] = network
    container["accelerator"] = accelerator
    container["stoppedOutside"] = CatalogDate.databaseValue(stoppedOutside)
    container["nameKey"] = nameKey
  }
}

/// What a disk file is.
enum DiskRole: String, Codable {
  /// A VM's own base disk.
  case base
  /// A read-only parent shared by linked clones.
  case template
  /// A linked clone's base: a differencing disk over a template.
  case clone
  /// A layer of a VM's chain above a checkpoint's frozen disk: the disk the VM writes to, until a
  /// later checkpoint freezes it in turn.
  case layer
  /// Part of a chain imported from elsewhere; not a checkpoint.
  case imported

  /// The roles a layer had before the catalog's "plain-words" migration, named for the operation
  /// that made it; manifests and exports of older versions still carry them.
  static let madeByCheckpoint = "checkpoint"
  static let madeByRestore = "working"

  init(from decoder: Decoder) throws {
    let word = try decoder.singleValueContainer().decode(String.self)
    if word == Self.madeByCheckpoint || word == Self.madeByRestore {
      self = .layer
    } else if let role = DiskRole(rawValue: word) {
      self = role
    } else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "unknown disk role '\(word)'"))
    }
  }
}

struct DiskRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "disk"
  var id: Int64?
  var path: String
  var uniqueID: String
  var parentID: Int64?
  var vmID: Int64?
  var slot: Int?
  var role: DiskRole
  /// For a layer a checkpoint made: that checkpoint.
  var checkpointID: Int64?
  /// For `template` disks: the unique id of the disk it was flattened from.
  var sourceUniqueID: String? = nil

  enum Columns {
    static let path = Column(CodingKeys.path)
    static let uniqueID = Column(CodingKeys.uniqueID)
    static let parentID = Column(CodingKeys.parentID)
    static let vmID = Column(CodingKeys.vmID)
    static let role = Column(CodingKeys.role)
    static let checkpointID = Column(CodingKeys.checkpointID)
    static let sourceUniqueID = Column(CodingKeys.sourceUniqueID)
  }

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension DiskRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    path = try row.decode(forColumn: "path")
    uniqueID = try row.decode(forColumn: "uniqueID")
    parentID = try row.decode(forColumn: "parentID")
    vmID = try row.decode(forColumn: "vmID")
    slot = try row.decode(forColumn: "slot")
    role = try row.decode(forColumn: "role")
    checkpointID = try row.decode(forColumn: "checkpointID")
    sourceUniqueID = try row.decode(forColumn: "sourceUniqueID")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["path"] = path
    container["uniqueID"] = uniqueID
    container["parentID"] = parentID
    container["vmID"] = vmID
    container["slot"] = slot
    container["role"] = role
    container["checkpointID"] = checkpointID
    container["sourceUniqueID"] = sourceUniqueID
  }
}

/// A VM's disk slot and the leaf the VM writes to now.
struct SlotRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "slot"
  var vmID: Int64
  var number: Int
  var baseID: Int64
  var leafID: Int64

  enum Columns {
    static let vmID = Column(CodingKeys.vmID)
    static let number = Column(CodingKeys.number)
    static let leafID = Column(CodingKeys.leafID)
  }
}

extension SlotRecord {
  init(row: Row) throws {
    vmID = try row.decode(forColumn: "vmID")
    number = try row.decode(forColumn: "number")
    baseID = try row.decode(forColumn: "baseID")
    leafID = try row.decode(forColumn: "leafID")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["vmID"] = vmID
    container["number"] = number
    container["baseID"] = baseID
    container["leafID"] = leafID
  }
}

struct CheckpointRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "checkpoint"
  var id: Int64?
  var vmID: Int64
  var name: String
  var description: String
  var created: Date
  var stamp: String
  var parentID: Int64?
  /// The VM's memory saved with an online checkpoint (hypervisor hosts), a file in the VM's folder.
  var memoryPath: String?

  enum Columns {
    static let id = Column(CodingKeys.id)
    static let vmID = Column(CodingKeys.vmID)
    static let created = Column(CodingKeys.created)
    static let stamp = Column(CodingKeys.stamp)
    static let parentID = Column(CodingKeys.parentID)
    static let memoryPath = Column(CodingKeys.memoryPath)
  }

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension CheckpointRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    vmID = try row.decode(forColumn: "vmID")
    name = try row.decode(forColumn: "name")
    description = try row.decode(forColumn: "description")
    created = try row.date(forColumn: "created")
    stamp = try row.decode(forColumn: "stamp")
    parentID = try row.decode(forColumn: "parentID")
    memoryPath = try row.decode(forColumn: "memoryPath")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["vmID"] = vmID
    container["name"] = name
    container["description"] = description
    container["created"] = CatalogDate.databaseValue(created)
    container["stamp"] = stamp
    container["parentID"] = parentID
    container["memoryPath"] = memoryPath
  }
}

/// For each slot of a checkpoint: the frozen disk that holds the VM's data at that moment.
struct CheckpointDiskRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "checkpointDisk"
  var checkpointID: Int64
  var slot: Int
  var frozenDiskID: Int64

  enum Columns {
    static let checkpointID = Column(CodingKeys.checkpointID)
    static let slot = Column(CodingKeys.slot)
    static let frozenDiskID = Column(CodingKeys.frozenDiskID)
  }
}

extension CheckpointDiskRecord {
  init(row: Row) throws {
    checkpointID = try row.decode(forColumn: "checkpointID")
    slot = try row.decode(forColumn: "slot")
    frozenDiskID = try row.decode(forColumn: "frozenDiskID")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["checkpointID"] = checkpointID
    container["slot"] = slot
    container["frozenDiskID"] = frozenDiskID
  }
}

struct LabRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "lab"
  var id: Int64?
  var name: String {
    didSet { nameKey = NameRules.key(name) }
  }
  var created: Date
  /// The name as names are compared, as for VMs.
  var nameKey: String = ""

  enum Columns {
    static let nameKey = Column(CodingKeys.nameKey)
  }

  mutating func willInsert(_ db: Database) throws { nameKey = NameRules.key(name) }
  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension LabRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    name = try row.decode(forColumn: "name")
    created = try row.date(forColumn: "created")
    nameKey = try row.decode(forColumn: "nameKey")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["name"] = name
    container["created"] = CatalogDate.databaseValue(created)
    container["nameKey"] = nameKey
  }
}

struct LabMemberRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "labMember"
  var labID: Int64
  var vmID: Int64
  var position: Int

  enum Columns {
    static let labID = Column(CodingKeys.labID)
    static let vmID = Column(CodingKeys.vmID)
    static let position = Column(CodingKeys.position)
  }
}

extension LabMemberRecord {
  init(row: Row) throws {
    labID = try row.decode(forColumn: "labID")
    vmID = try row.decode(forColumn: "vmID")
    position = try row.decode(forColumn: "position")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["labID"] = labID
    container["vmID"] = vmID
    container["position"] = position
  }
}

struct JobRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "job"
  var id: Int64?
  var kind: String
  var target: String
  var status: JobStatus
  var progress: Double
  var created: Date
  var started: Date?
  var finished: Date?
  var error: String?
  var result: String?

  enum Columns {
    static let id = Column(CodingKeys.id)
    static let status = Column(CodingKeys.status)
    static let progress = Column(CodingKeys.progress)
    static let started = Column(CodingKeys.started)
    static let finished = Column(CodingKeys.finished)
    static let error = Column(CodingKeys.error)
    static let result = Column(CodingKeys.result)
  }

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension JobRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    kind = try row.decode(forColumn: "kind")
    target = try row.decode(forColumn: "target")
    status = try row.decode(forColumn: "status")
    progress = try row.decode(forColumn: "progress")
    created = try row.date(forColumn: "created")
    started = try row.optionalDate(forColumn: "started")
    finished = try row.optionalDate(forColumn: "finished")
    error = try row.decode(forColumn: "error")
    result = try row.decode(forColumn: "result")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["kind"] = kind
    container["target"] = target
    container["status"] = status
    container["progress"] = progress
    container["created"] = CatalogDate.databaseValue(created)
    container["started"] = CatalogDate.databaseValue(started)
    container["finished"] = CatalogDate.databaseValue(finished)
    container["error"] = error
    container["result"] = result
  }
}

/// A multi-file operation in flight (DESIGN.md rule 1): the files it creates (removed if it is rolled
/// back), the files it deletes once committed, and for operations that must roll forward (a merge
/// has already changed its target) what it takes to finish.
struct JournalRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "journal"
  var id: Int64?
  var operation: String
  var vmName: String
  var created: Date
  var creates: [String]
  var deletes: [String]
  var committed: Bool
  /// JSON for operations that recovery completes instead of rolling back.
  var redo: String?
  /// JSON of the commit of an operation prepared in two phases (a lab checkpoint across hosts): set
  /// once its files are made and synced; the entry then waits for a decision, commit or roll back,
  /// which recovery never takes on its own.
  var prepared: String? = nil

  enum Columns {
    static let id = Column(CodingKeys.id)
    static let committed = Column(CodingKeys.committed)
  }

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  /// The VMs of an operation, as `vmName` shows them: a bulk operation lists its VMs separated by
  /// commas (names cannot hold one).
  static func names(inList list: String) -> [String] { list.split(separator: ",").map(String.init) }

  var vmNames: [String] { JournalRecord.names(inList: vmName) }
}

extension JournalRecord {
  init(row: Row) throws {
    id = try row.decode(forColumn: "id")
    operation = try row.decode(forColumn: "operation")
    vmName = try row.decode(forColumn: "vmName")
    created = try row.date(forColumn: "created")
    creates = try JournalRecord.paths(in: row, column: "creates")
    deletes = try JournalRecord.paths(in: row, column: "deletes")
    committed = try row.decode(forColumn: "committed")
    redo = try row.decode(forColumn: "redo")
    prepared = try row.decode(forColumn: "prepared")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["id"] = id
    container["operation"] = operation
    container["vmName"] = vmName
    container["created"] = CatalogDate.databaseValue(created)
    container["creates"] = try JournalRecord.text(of: creates)
    container["deletes"] = try JournalRecord.text(of: deletes)
    container["committed"] = committed
    container["redo"] = redo
    container["prepared"] = prepared
  }

  /// The file lists are JSON arrays of library-relative paths, as GRDB's Codable support wrote
  /// them (the same encoder settings, so old and new rows read alike).
  private static func text(of paths: [String]) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(paths), as: UTF8.self)
  }

  private static func paths(in row: Row, column: String) throws -> [String] {
    let text: String = try row.decode(forColumn: column)
    do {
      return try JSONDecoder().decode([String].self, from: Data(text.utf8))
    } catch {
      throw LabKitError(
        .inconsistent,
        "the catalog's journal entry \((try? row.decode(Int64.self, forColumn: "id")).map(String.init) ?? "?") has an unreadable \(column) list (\(error)); `vmlab library repair` rebuilds the catalog from the files"
      )
    }
  }
}

/// One VM a journal entry involves, by name key: the operations left half done on a VM are found
/// through it. By name, not id: the VM of a `vm create` has no row until the commit.
struct JournalVMRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "journalVM"
  var journalID: Int64
  var vmKey: String

  enum Columns {
    static let journalID = Column(CodingKeys.journalID)
    static let vmKey = Column(CodingKeys.vmKey)
  }
}

extension JournalVMRecord {
  init(row: Row) throws {
    journalID = try row.decode(forColumn: "journalID")
    vmKey = try row.decode(forColumn: "vmKey")
  }

  func encode(to container: inout PersistenceContainer) throws {
    container["journalID"] = journalID
    container["vmKey"] = vmKey
  }
}

extension HostKind: DatabaseValueConvertible {}
extension PowerState: DatabaseValueConvertible {}
extension DiskRole: DatabaseValueConvertible {}
extension JobStatus: DatabaseValueConvertible {}
extension Hardware.Network: DatabaseValueConvertible {}
extension Hardware.Accelerator: DatabaseValueConvertible {}
