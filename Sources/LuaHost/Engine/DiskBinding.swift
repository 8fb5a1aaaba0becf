import Foundation
import VHD

/// A Disk object's identity: the absolute path of a VHD file. Every call opens the file (and its
/// chain) for that call only, so a handle never holds a file open and a file changed or removed
/// by someone else gives the VHD library's error, never a crash. Properties (size, type, chain)
/// come from `DiskFacts`, which reads a file again only when a stat shows it changed.
final class DiskHandle: Equatable {
  enum Status {
    case open
    case closed
    case merged(into: String)
  }

  let path: String
  var status: Status = .open

  init(path: String) { self.path = path }

  static func == (lhs: DiskHandle, rhs: DiskHandle) -> Bool { lhs.path == rhs.path }

  /// The path, or a clear error for a handle closed or merged away.
  func usablePath() throws -> String {
    switch status {
    case .open: return path
    case .closed: throw EngineError("disk \(path) is closed; open it again with vmlab.disk.open")
    case .merged(let parent):
      throw EngineError("disk \(path) was merged into \(parent) and removed; use the disk merge() returned")
    }
  }
}

/// `vmlab.disk.create`, `vmlab.disk.open` and the Disk class: VHD files without a library.
extension EngineBinding {
  func defineDisks(in module: LuaTable, state: LuaState) {
    let disk = state.defineClass("Disk", payload: DiskHandle.self)
    diskClass = disk
    disk.toString { handle in
      switch handle.status {
      case .closed: return "Disk \(handle.path) (closed)"
      case .merged(let parent): return "Disk \(handle.path) (merged into \(parent))"
      case .open:
        guard let leaf = try? self.diskFacts.leaf(handle.path) else { return "Disk \(handle.path) (unreadable)" }
        return "Disk \(handle.path) (\(leaf.type), \(ByteCount.format(leaf.size)))"
      }
    }

    disk.columns(["path", "type", "size"])
    disk.property("path") { .text($0.path) }
    disk.property("closed") { handle in
      if case .open = handle.status { return false }
      return true
    }
    disk.property("size") { handle in LuaValue(try self.diskFacts.leaf(try handle.usablePath()).size) }
    disk.property("type") { handle in .text(try self.diskFacts.leaf(try handle.usablePath()).type.description) }
    disk.property("chain") { handle in
      try self.strings(try self.diskFacts.chainPaths(try handle.usablePath()))
    }
    disk.property("parent") { handle in
      let paths = try self.diskFacts.chainPaths(try handle.usablePath())
      return paths.count > 1 ? try self.wrapDisk(paths[1]) : .nil
    }

    disk.method("read") { handle, arguments in
      let start = try offset(arguments, 1)
      let length = try arguments.int(2)
      guard length >= 0 else { throw arguments.error(2, "length cannot be negative") }
      return [.string(try Self.withChain(handle) { try $0.read(at: start, count: length) })]
    }
    disk.method("write") { handle, arguments in
      let start = try offset(arguments, 1)
      let bytes = try arguments.bytes(2)
      let chain = try DiskChain.open(try handle.usablePath(), writable: true)
      defer { chain.close() }
      self.diskFacts.mayHaveChanged()
      try chain.write(bytes, at: start)
      try chain.synchronize()
      return [.integer(Int64(bytes.count))]
    }
    disk.method("merge") { handle, arguments in
      try arguments.checkOptions(1, allowed: ["force"])
      let path = try handle.usablePath()
      let others = try DiskChain.otherChildren(ofParentOf: path)
      let force = try arguments.flag(1, "force")
      if !others.isEmpty && !force {
        throw EngineError(
          "cannot merge \(path): other disks use the same parent and would change (\(others.joined(separator: ", "))); merge or remove them first, or pass {force=true}"
        )
      }
      let report = try DiskChain.merge(child: path)
      self.diskFacts.mayHaveChanged()
      if report.childRemoved { handle.status = .merged(into: report.parent) }
      return [
        try self.wrapDisk(report.parent),
        try self.table([
          "child": .text(report.child), "parent": .text(report.parent), "bytesMerged": LuaValue(report.bytesMerged),
          "childRemoved": .boolean(report.childRemoved),
        ]),
      ]
    }
    disk.method("info") { handle, _ in
      let info = try Self.withChain(handle) { try DiskInfo(chain: $0) }
      let layers = try info.chain.map { layer in
        try self.table([
          "path": .text(layer.path), "type": .text(layer.type.description),
          "uniqueID": .text(layer.uniqueID.description),
          "fileSize": LuaValue(layer.fileSize), "allocatedBytes": LuaValue(layer.allocatedBytes),
        ])
      }
      return [
        try self.table([
          "path": .text(info.path), "type": .text(info.type.description), "size": LuaValue(info.virtualSize),
          "fileSize": LuaValue(info.fileSize), "allocatedBytes": LuaValue(info.allocatedBytes),
          "blockSize": info.blockSize.map { .integer(Int64($0)) } ?? .nil, "uniqueID": .text(info.uniqueID.description),
          "geometry": .text(info.geometry), "geometrySize": LuaValue(info.geometrySize), "creator": .text(info.creator),
          "savedState": .boolean(info.savedState), "chain": try self.list(.plain, layers),
        ])
      ]
    }
    disk.method("close") { handle, _ in
      if case .open = handle.status { handle.status = .closed }
      return []
    }

    let functions = state.newTable()
    functions["create"] = .function(
      state.function(named: "create") { arguments in
        try self.requireFileAccess("vmlab.disk.create")
        try arguments.checkOptions(1, allowed: ["path", "size", "type", "parent"])
        _ = try arguments.table(1)
        let path = absolutePath(try arguments.requiredString(1, "path"))
        let parent = try arguments.field(1, "parent")
        let typeName = try arguments.option(1, "type", as: String.self)
        if !parent.isNil {
          let parentPath: String
          if let handle = self.diskClass?.payload(of: parent) {
            parentPath = try handle.usablePath()
          } else if let text = parent.stringValue {
            parentPath = absolutePath(text)
          } else {
            throw arguments.error(1, "field 'parent': path or Disk expected, got \(parent.typeName)")
          }
          if let typeName, typeName != "differencing" {
            throw arguments.error(1, "a disk with a parent is differencing, not \(typeName)")
          }
          guard try arguments.field(1, "size").isNil else {
            throw arguments.error(1, "a differencing disk has its parent's size; leave 'size' out")
          }
          try VirtualDisk.createDifferencing(at: path, parent: parentPath).close()
          self.diskFacts.forget(path)  // a file made where another was: the inode may be the same
          return [try self.wrapDisk(path)]
        }
        let sizeValue = try arguments.field(1, "size")
        guard !sizeValue.isNil else { throw arguments.error(1, "field 'size' (or 'parent') is required") }
        let size = try byteCount(sizeValue, what: "size")
        var type = DiskType.dynamic
        if let typeName {
          guard let named = DiskType(name: typeName), named != .differencing else {
            throw arguments.error(
              1,
              "field 'type': \"dynamic\" or \"fixed\" expected, got \"\(typeName)\" (give 'parent' for a differencing disk)"
            )
          }
          type = named
        }
        try VirtualDisk.create(at: path, size: size, type: type).close()
        self.diskFacts.forget(path)  // a file made where another was: the inode may be the same
        return [try self.wrapDisk(path)]
      })
    functions["open"] = .function(
      state.function(named: "open") { arguments in
        try self.requireFileAccess("vmlab.disk.open")
        let path = absolutePath(try arguments.string(1))
        try DiskChain.open(path).close()  // a clear error now rather than at first use
        return [try self.wrapDisk(path)]
      })
    module["disk"] = .table(functions)
  }

  func wrapDisk(_ path: String) throws -> LuaValue {
    try defined(diskClass).wrap(DiskHandle(path: path))
  }

  static func withChain<Result>(_ handle: DiskHandle, _ body: (DiskChain) throws -> Result) throws -> Result {
    let chain = try DiskChain.open(try handle.usablePath())
    defer { chain.close() }
    return try body(chain)
  }
}
