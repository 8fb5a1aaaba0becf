import Foundation

/// `vms/NAME/vm.json`: what the catalog knows of one VM, kept beside its files so that
/// `library repair` can rebuild the catalog with names and descriptions intact. Written after every
/// committed operation; the catalog stays the authority while it exists.
struct VMManifest: Codable {
  struct Disk: Codable {
    var path: String
    var uniqueID: String
    var parent: String?
    var slot: Int?
    var role: DiskRole
    var checkpointStamp: String?
    /// For templates: the unique id of the disk they were made from.
    var sourceUniqueID: String? = nil
  }

  struct Slot: Codable {
    var number: Int
    var base: String
    var leaf: String
  }

  struct Checkpoint: Codable {
    var stamp: String
    var name: String
    var description: String
    var created: Date
    var parentStamp: String?
    /// The VM's memory at that moment, for a checkpoint taken online.
    var memoryPath: String?
    /// The frozen disk of each slot, in slot order.
    var frozenDisks: [String]
  }

  var name: String
  var hostKind: HostKind
  /// The host that runs it and its hardware (absent in manifests of older versions: the defaults).
  var host: String?
  var hardware: Hardware?
  var state: PowerState
  var additions: Bool
  var created: Date
  /// The memory of a saved VM.
  var savedMemoryPath: String?
  var currentCheckpointStamp: String?
  var slots: [Slot]
  var disks: [Disk]
  var checkpoints: [Checkpoint]
}

/// Manifests and exports written before the catalog's "plain-words" migration name saved memory a
/// "state" and frozen disks "states"; they are read under either word (and roles under their old
/// names, see `DiskRole`), and always written with the new ones.
private enum EarlierManifestKeys: String, CodingKey {
  case savedStatePath, runningStatePath, states
}

extension VMManifest.Checkpoint {
  init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let earlier = try decoder.container(keyedBy: EarlierManifestKeys.self)
    stamp = try container.decode(String.self, forKey: .stamp)
    name = try container.decode(String.self, forKey: .name)
    description = try container.decode(String.self, forKey: .description)
    created = try container.decode(Date.self, forKey: .created)
    parentStamp = try container.decodeIfPresent(String.self, forKey: .parentStamp)
    memoryPath =
      try container.decodeIfPresent(String.self, forKey: .memoryPath)
      ?? earlier.decodeIfPresent(String.self, forKey: .runningStatePath)
    frozenDisks =
      try container.decodeIfPresent([String].self, forKey: .frozenDisks)
      ?? earlier.decode([String].self, forKey: .states)
  }
}

extension VMManifest {
  init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let earlier = try decoder.container(keyedBy: EarlierManifestKeys.self)
    name = try container.decode(String.self, forKey: .name)
    hostKind = try container.decode(HostKind.self, forKey: .hostKind)
    host = try container.decodeIfPresent(String.self, forKey: .host)
    hardware = try container.decodeIfPresent(Hardware.self, forKey: .hardware)
    state = try container.decode(PowerState.self, forKey: .state)
    additions = try container.decode(Bool.self, forKey: .additions)
    created = try container.decode(Date.self, forKey: .created)
    savedMemoryPath =
      try container.decodeIfPresent(String.self, forKey: .savedMemoryPath)
      ?? earlier.decodeIfPresent(String.self, forKey: .savedStatePath)
    currentCheckpointStamp = try container.decodeIfPresent(String.self, forKey: .currentCheckpointStamp)
    slots = try container.decode([Slot].self, forKey: .slots)
    disks = try container.decode([Disk].self, forKey: .disks)
    checkpoints = try container.decode([Checkpoint].self, forKey: .checkpoints)
  }
}

/// `labs.json` at the library's root: the labs and their members.
struct LabsManifest: Codable {
  struct Entry: Codable {
    var name: String
    var created: Date
    var vms: [String]
  }

  var labs: [Entry]
}

extension Library {
  static let manifestEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    // Milliseconds kept: checkpoints are ordered by creation time, often several in one second.
    encoder.dateEncodingStrategy = .custom { date, encoder in
      var container = encoder.singleValueContainer()
      try container.encode(isoTimestamp(date))
    }
    return encoder
  }()

  /// Reads manifest dates with or without fractional seconds.
  static let manifestDecoder: JSONDecoder = {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .custom { decoder in
      let container = try decoder.singleValueContainer()
      let text = try container.decode(String.self)
      guard
        let date = manifestDateFormatter(fractional: true).date(from: text)
          ?? manifestDateFormatter(fractional: false).date(from: text)
      else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
      }
      return date
    }
    return decoder
  }()

  /// `2026-11-26T21:47:02.123Z`, built by hand: a formatter per date would cost more than the rest
  /// of a manifest (or, for an agent's log line, than the step it reports).
  public static func isoTimestamp(_ date: Date) -> String {
    let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
      + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
  }

  static func manifestDateFormatter(fractional: Bool) -> ISO8601DateFormatter {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = fractional ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
    return formatter
  }

  /// Rewrites a VM's manifest from the catalog (atomically), or removes it when the VM is gone.
  func writeManifest(vm name: String) throws {
    let manifest = try catalog.read { tx in try self.manifest(tx, vm: name) }
    try writeManifestFile(vm: name, manifest)
  }

  /// Rewrites several VMs' manifests: read in one catalog transaction, written several at a time
  /// (replacing a file frees the old one's blocks, which waits on the disk). A manifest is a copy
  /// for `library repair`: one that cannot be written now is rewritten after the VM's next
  /// operation.
  func writeManifests(vms names: [String]) {
    guard let manifests = try? catalog.read({ tx in try names.map { try self.manifest(tx, vm: $0) } }) else { return }
    _ = parallel(Array(zip(names, manifests))) { [self] name, manifest in try writeManifestFile(vm: name, manifest) }
  }

  private func writeManifestFile(vm name: String, _ manifest: VMManifest?) throws {
    guard let manifest else {
      removeFileIfPresent(absolute(vmFolder(name) + "/vm.json"))
      return
    }
    try replaceFile(absolute(vmFolder(manifest.name) + "/vm.json"), with: try Library.manifestEncoder.encode(manifest))
  }

  /// What the catalog knows of a VM, with library-relative paths; nil when there is no such VM.
  func manifest(vm name: String) throws -> VMManifest? {
    try catalog.read { tx in try manifest(tx, vm: name) }
  }

  /// The same, inside a transaction that is already open.
  private func manifest(_ tx: CatalogTransaction, vm name: String) throws -> VMManifest? {
    guard let vm = try tx.vm(named: name) else { return nil }
    let disks = try tx.disksAndTemplates(ofVM: vm.id!)
    let byID = Dictionary(uniqueKeysWithValues: disks.map { ($0.id!, $0) })
    let checkpoints = try tx.checkpoints(ofVM: vm.id!)
    let stamps = Dictionary(uniqueKeysWithValues: checkpoints.map { ($0.id!, $0.stamp) })
    return VMManifest(
      name: vm.name, hostKind: vm.hostKind, host: vm.host, hardware: vm.hardware, state: vm.state,
      additions: vm.additions, created: vm.created,
      savedMemoryPath: vm.savedMemoryPath, currentCheckpointStamp: vm.currentCheckpointID.flatMap { stamps[$0] },
      slots: try tx.slots(ofVM: vm.id!).map {
        VMManifest.Slot(number: $0.number, base: byID[$0.baseID]?.path ?? "", leaf: byID[$0.leafID]?.path ?? "")
      },
      disks: disks.map {
        VMManifest.Disk(
          path: $0.path, uniqueID: $0.uniqueID, parent: $0.parentID.flatMap { byID[$0]?.path }, slot: $0.slot,
          role: $0.role, checkpointStamp: $0.checkpointID.flatMap { stamps[$0] }, sourceUniqueID: $0.sourceUniqueID)
      },
      checkpoints: try checkpoints.map { checkpoint in
        let frozen = try tx.frozenDisks(ofCheckpoint: checkpoint.id!)
        return VMManifest.Checkpoint(
          stamp: checkpoint.stamp, name: checkpoint.name, description: checkpoint.description,
          created: checkpoint.created,
          parentStamp: checkpoint.parentID.flatMap { stamps[$0] }, memoryPath: checkpoint.memoryPath,
          frozenDisks: frozen.map { byID[$0.frozenDiskID]?.path ?? "" })
      })
  }

  func writeLabsManifest() throws {
    let manifest = LabsManifest(labs: try labs().map { .init(name: $0.name, created: $0.created, vms: $0.vms) })
    try replaceFile(absolute("labs.json"), with: Library.manifestEncoder.encode(manifest))
  }

  static let temporaryMarker = ".vmlab-tmp-"

  /// Replaces a file whole: writes a temporary file beside it, then renames it over the file, so a
  /// reader sees the old contents or the new ones. (Foundation's `.atomic` does the same with a
  /// temporary name of its own, `.dat.nosyncXXXX`, that a killed process left behind in the VM
  /// folder; this name is one `removeTemporaryFiles` recognises.)
  func replaceFile(_ path: String, with data: Data) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
      .appendingPathComponent("." + url.lastPathComponent + Library.temporaryMarker + UUID().uuidString).path
    do {
      // Plain open and write, no fsync: Foundation's writers fsync, which would cost more than the
      // operation itself, and a manifest is only a copy of the catalog for `library repair` (the file
      // system orders the data before the rename).
      let file = try SystemFile.open(temporary, .writeTruncating, what: "the manifest's temporary file")
      do {
        try file.write(data)
      } catch {
        file.close()
        throw error
      }
      file.close()
      try SystemFile.rename(temporary, over: path)
    } catch {
      removeFileIfPresent(temporary)
      throw error
    }
  }

  /// Removes the temporary files of manifest writes that a killed process left at the library's
  /// root and in the VM folders (ours, and Foundation's from earlier versions). Runs when the library
  /// opens, holding the library lock, before anything writes.
  func removeTemporaryFiles() {
    let fileManager = FileManager.default
    var folders = [root]
    for name in (try? fileManager.contentsOfDirectory(atPath: absolute("vms"))) ?? [] {
      folders.append(absolute("vms/" + name))
    }
    for folder in folders {
      for name in (try? fileManager.contentsOfDirectory(atPath: folder)) ?? []
      where name.hasPrefix(".") && (name.contains(Library.temporaryMarker) || name.hasPrefix(".dat.nosync")) {
        removeFileIfPresent(folder + "/" + name)
      }
    }
  }

  /// Removes memory files (`.vsv`) in the VM folders that neither a saved VM nor an online
  /// checkpoint names: a process killed while it saved a VM, between writing
  /// the file and committing, left it. Runs when the library opens, after recovery.
  func removeUnreferencedMemoryFiles() throws {
    let (vms, named) = try catalog.read { tx -> ([String], Set<String>) in
      // A prepared operation's files too: the catalog names them only once it is decided.
      (
        try tx.vmNames(),
        Set(try tx.savedMemoryPaths() + tx.checkpointMemoryPaths() + tx.journalEntries().flatMap(\.creates))
      )
    }
    for vm in vms {
      let folder = vmFolder(vm)
      for name in (try? FileManager.default.contentsOfDirectory(atPath: absolute(folder))) ?? []
      where name.hasSuffix(".vsv") && !named.contains(folder + "/" + name) {
        removeFileIfPresent(absolute(folder + "/" + name))
      }
    }
  }
}
