import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What state a catalog file is in, as `library repair` finds it.
enum CatalogCondition {
  case missing
  case sound(settings: [String: String])
  /// It cannot be opened or SQLite's integrity check fails; the settings are those still readable.
  case damaged(String, settings: [String: String])

  var settings: [String: String] {
    switch self {
    case .missing: return [:]
    case .sound(let settings), .damaged(_, let settings): return settings
    }
  }

  var isDamaged: Bool {
    if case .damaged = self { return true }
    return false
  }
}

// The catalog as files: SQLite keeps a database in up to three (the file, its write-ahead log and
// the log's index), and replacing a catalog must move them together.
extension Catalog {
  private static let companions = ["-wal", "-shm", "-journal"]

  /// Opens the catalog at `path` only to judge it: sound, damaged (and why), or missing.
  static func examine(_ path: String) -> CatalogCondition {
    guard FileManager.default.fileExists(atPath: path) else { return .missing }
    do {
      let catalog = try Catalog(path: path)
      defer { try? catalog.close() }
      let settings = (try? catalog.read { catalog in try catalog.settings() }) ?? [:]
      let problems = try catalog.integrityProblems()
      guard problems.isEmpty else {
        return .damaged("SQLite's integrity check: \(problems.prefix(3).joined(separator: "; "))", settings: settings)
      }
      return .sound(settings: settings)
    } catch let error as LabKitError {
      return .damaged(error.message, settings: [:])
    } catch {
      return .damaged("\(error)", settings: [:])
    }
  }

  /// Removes a catalog file and its companions, if present.
  static func removeFiles(at path: String) {
    for suffix in [""] + companions { unlink(path + suffix) }
  }

  /// Puts the closed, complete catalog `building` in the place of the one at `path` by rename, so a
  /// crash leaves one catalog or the other, never none. The old one (with its log) is kept as
  /// `PATH.LABEL-<time stamp>`, whose path is returned (nil when there was none).
  static func install(_ building: String, at path: String, keepingOldAs label: String) throws -> String? {
    // Closing the last connection folds the log into the file; a log left over would be replayed
    // onto the wrong database.
    for suffix in companions where FileManager.default.fileExists(atPath: building + suffix) {
      let size = (try? FileManager.default.attributesOfItem(atPath: building + suffix)[.size] as? Int) ?? 0
      guard size == 0 || suffix == "-shm" else {
        throw LabKitError(.failed, "the rebuilt catalog \(building) still has a log (\(suffix)); nothing was replaced")
      }
      unlink(building + suffix)
    }
    var kept: String? = nil
    if FileManager.default.fileExists(atPath: path) || FileManager.default.fileExists(atPath: path + "-wal") {
      let aside = path + ".\(label)-" + CheckpointFileName.stamp(for: Date())
      if FileManager.default.fileExists(atPath: path) {
        guard link(path, aside) == 0 else {
          throw LabKitError(
            .failed,
            "cannot keep the old catalog as \(aside): \(String(cString: strerror(errno))); nothing was replaced")
        }
      }
      for suffix in companions where FileManager.default.fileExists(atPath: path + suffix) {
        if suffix == "-wal" { rename(path + suffix, aside + suffix) } else { unlink(path + suffix) }
      }
      kept = aside
    }
    guard rename(building, path) == 0 else {
      throw LabKitError(
        .failed, "cannot move the rebuilt catalog \(building) to \(path): \(String(cString: strerror(errno)))")
    }
    let folder = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folder >= 0 {
      fsync(folder)
      Glibc.close(folder)
    }
    return kept
  }
}
