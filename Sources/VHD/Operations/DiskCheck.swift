/// A structural check of a disk and its chain, listing every problem found rather than the first.
public struct DiskCheck: Sendable {
  /// Problems that make the disk unsound.
  public var problems: [VHDError] = []
  /// Findings worth knowing that do not make it unsound.
  public var warnings: [String] = []
  /// The chain's paths, leaf first, when it opened.
  public var chain: [String] = []

  public var isSound: Bool { problems.isEmpty }

  public init(path: String, options: OpenOptions = OpenOptions()) {
    var path = absolutePath(path)
    var seen: Set<String> = []
    while true {
      guard seen.insert(canonicalPath(path)).inserted else {
        problems.append(VHDError(path: path, field: "chain", .parentLoop, "the chain comes back to this file"))
        return
      }
      chain.append(path)
      guard let next = checkOne(path, options: options) else { return }
      if chain.count >= options.maximumDepth {
        problems.append(VHDError(path: path, field: "chain", .chainTooDeep, "deeper than \(options.maximumDepth)"))
        return
      }
      path = next
    }
  }

  /// Checks one file; returns its parent's path when there is one to check next.
  private mutating func checkOne(_ path: String, options: OpenOptions) -> String? {
    let file: BlockFile
    do {
      file = try BlockFile(openingAt: path, writable: false)
    } catch let error as VHDError {
      problems.append(error)
      return nil
    } catch {
      problems.append(VHDError(path: path, field: "file", .io, "\(error)"))
      return nil
    }
    defer { file.close() }
    let structure: DiskStructure
    do {
      // Checksums are checked on their own below, so that the rest of the file is still examined.
      structure = try DiskStructure.read(from: file, verifyChecksums: false)
    } catch let error as VHDError {
      problems.append(error.at(path))
      return nil
    } catch {
      problems.append(VHDError(path: path, field: "file", .io, "\(error)"))
      return nil
    }
    problems += structure.problems.map { $0.at(path) }
    warnings += structure.warnings.map { "\(path): \($0)" }
    if let bytes = try? file.read(at: file.size - 512, count: 512, field: "footer") {
      if case .failure(let error) = Result(catching: { try Footer(decoding: bytes) }) {
        problems.append((error as? VHDError)?.at(path) ?? VHDError(path: path, field: "footer", .io, "\(error)"))
      }
    }
    if let header = structure.header,
      let bytes = try? file.read(at: structure.footer.dataOffset, count: 1024, field: "header"),
      case .failure(let error) = Result(catching: { try DynamicHeader(decoding: bytes) })
    {
      problems.append((error as? VHDError)?.at(path) ?? VHDError(path: path, field: "header", .io, "\(error)"))
      _ = header
    }
    guard structure.footer.diskType == .differencing, structure.problems.isEmpty else { return nil }
    // Follow the parent the way a chain open does, leniently, so the parent is checked in turn.
    do {
      let disk = try VirtualDisk.open(path, options: OpenOptions(verifyChecksums: false))
      defer { disk.close() }
      let parent = try ParentResolver(
        options: OpenOptions(verifyChecksums: false, parentSearchRoot: options.parentSearchRoot)
      ).openParent(of: disk)
      defer { parent.close() }
      if parent.size != disk.size {
        problems.append(
          VHDError(
            path: path, field: "footer.currentSize", .parentMismatch,
            "is \(disk.size) bytes but its parent \(parent.path) is \(parent.size) bytes"))
      }
      if let stamp = disk.header?.parentTimestamp, stamp != 0,
        stamp != VHDTimestamp.from(.init(timeIntervalSince1970: parent.file.modificationTime))
      {
        warnings.append(
          "\(path): the parent's modification time differs from the one recorded (header.parentTimestamp)")
      }
      return parent.path
    } catch let error as VHDError {
      problems.append(error.at(path))
      return nil
    } catch {
      problems.append(VHDError(path: path, field: "chain", .io, "\(error)"))
      return nil
    }
  }
}
