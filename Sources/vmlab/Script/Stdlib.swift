import Foundation

/// Where the bundled Lua scripts and modules live: `$VMLAB_STDLIB`, else beside the installed binary
/// (`PREFIX/bin/vmlab` → `PREFIX/share/vmlab/Stdlib`), else the checkout the binary was built in
/// (`CHECKOUT/.build/…/vmlab` → `CHECKOUT/Stdlib`). Found from where the binary is, never from
/// where its sources were on the build machine.
enum Stdlib {
  static let folder: String? = {
    var candidates: [String] = []
    if let variable = ProcessInfo.processInfo.environment["VMLAB_STDLIB"], !variable.isEmpty {
      candidates.append(variable)
    }
    if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
      let bin = executable.deletingLastPathComponent()
      candidates.append(bin.deletingLastPathComponent().appendingPathComponent("share/vmlab/Stdlib").path)
      // A build folder: the nearest folder above it that holds Package.swift and Stdlib.
      var folder = bin
      while folder.path != "/" {
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
          candidates.append(folder.appendingPathComponent("Stdlib").path)
          break
        }
        folder = folder.deletingLastPathComponent()
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
    var isFolder: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
  }
}
