import Foundation
import GRDB

// The catalog's rows. Paths are relative to the library folder, so a library can be moved.

struct VMRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "vm"
  var id: Int64?
  var name: String
  var hostKind: HostKind
  /// vmlab changing the power state forgets that the VM was once found stopped outside it.
  var state: PowerState {
    didSet { if state != oldValue { stoppedOutside = nil } }
  }
  var additions: Bool
  var created: Date
  /// The checkpoint the VM's current state descends from (the parent of its next checkpoint).
  var currentCheckpointID: Int64?
  /// For a VM in saved state: its running state, a file in the VM's folder.
  var savedStatePath: String?
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

/// What a disk file is for.
enum DiskRole: String, Codable {
  /// A VM's own base disk.
  case base
  /// A read-only parent shared by linked clones.
  case template
  /// A linked clone's base: a differencing disk over a template.
  case clone
  /// Made by a checkpoint: a differencing disk over the state the checkpoint keeps.
  case checkpoint
  /// Made by a restore: the VM's new leaf over a checkpoint's state.
  case working
  /// Part of a chain imported from elsewhere; not a checkpoint.
  case imported
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
  /// For `checkpoint` disks: the checkpoint that made it.
  var checkpointID: Int64?
  /// For `template` disks: the unique id of the disk it was flattened from.
  var sourceUniqueID: String? = nil

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A VM's disk slot and the leaf the VM writes to now.
struct SlotRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "slot"
  var vmID: Int64
  var number: Int
  var baseID: Int64
  var leafID: Int64
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
  /// The running state saved with an online checkpoint (hypervisor hosts), a file in the VM's folder.
  var runningStatePath: String?

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// For each slot of a checkpoint: the frozen disk that holds the VM's data at that moment.
struct CheckpointDiskRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "checkpointDisk"
  var checkpointID: Int64
  var slot: Int
  var stateID: Int64
}

struct LabRecord: Codable, FetchableRecord, MutablePersistableRecord, Equatable {
  static let databaseTableName = "lab"
  var id: Int64?
  var name: String
  var created: Date

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct LabMemberRecord: Codable, FetchableRecord, PersistableRecord, Equatable {
  static let databaseTableName = "labMember"
  var labID: Int64
  var vmID: Int64
  var position: Int
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

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
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

  mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension HostKind: DatabaseValueConvertible {}
extension PowerState: DatabaseValueConvertible {}
extension DiskRole: DatabaseValueConvertible {}
extension Hardware.Network: DatabaseValueConvertible {}
extension Hardware.Accelerator: DatabaseValueConvertible {}
