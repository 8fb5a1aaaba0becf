import Foundation

/// Where a library lives: `--library DIR`, else `VMLAB_LIBRARY`, else `$XDG_DATA_HOME/vmlab`, else
/// `~/.local/share/vmlab`. The environment is read only when no folder is given (building
/// Foundation's dictionary of it cost every command 0.4 M instructions).
public enum LibraryLocation {
  public static func resolve(
    explicit: String?,
    environment readEnvironment: @autoclosure () -> [String: String] = ProcessInfo.processInfo.environment
  ) -> String {
    if let explicit, !explicit.isEmpty { return explicit }
    let environment = readEnvironment()
    if let variable = environment["VMLAB_LIBRARY"], !variable.isEmpty { return variable }
    if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/vmlab" }
    let home = environment["HOME"] ?? NSHomeDirectory()
    return home + "/.local/share/vmlab"
  }
}
