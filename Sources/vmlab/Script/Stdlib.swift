import Foundation

/// Where the bundled Lua scripts and modules live: `$VMLAB_STDLIB`, else beside the installed binary
/// (`PREFIX/bin/vmlab` → `PREFIX/share/vmlab/Stdlib`), else the checkout the binary was built in
/// (`CHECKOUT/.build/…/vmlab` → `CHECKOUT/Stdlib`). Found from where the binary is, never from
/// where its sources were on the build machine.
enum Stdlib {
  ///
  /// Found with plain system calls (getenv, realpath of /proc/self/exe, stat): every `vmlab run`
  /// looks for it, and Foundation's Bundle, URL and environment dictionary cost it about 1.5 M
  /// instructions, more than the rest of the script's set-up.
  static let folder: String? = {
    var candidates: [String] = []
    if let variable = getenv("VMLAB_STDLIB").map({ String(cString: $0) }), !variable.isEmpty {
      candidates.append(variable)
    }
    if let executable = realPath("/proc/self/exe") ?? Bundle.main.executablePath.flatMap(realPath) {
      let bin = parent(of: executable)
      candidates.append(parent(of: bin) + "/share/vmlab/Stdlib")
      // A build folder: the nearest folder above it that holds Package.swift and Stdlib.
      var folder = bin
      while folder != "/" {
        if exists(folder + "/Package.swift") {
          candidates.append(folder + "/Stdlib")
          break
        }
        folder = parent(of: folder)
      }
    }
    return candidates.first { isDirectory($0) }.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
  }()

  /// A bundled script by name: NAME or NAME.lua in the Stdlib folder.
  static func script(named name: String) -> String? {
    guard let folder, !name.isEmpty, !name.hasPrefix("/") else { return nil }
    for candidate in [name, name + ".lua"] {
      let path = folder + "/" + candidate
      var isFolder: ObjCBool = false
      if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue { return path }
    }
    return nil
  }

  private static func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
  }

  private static func exists(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0
  }

  /// The absolute path with every symbolic link resolved, or nil when it does not exist.
  private static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  /// The folder that holds `path` (absolute, resolved): "/" for a top-level name.
  private static func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
  }
}
