/// What a VM, checkpoint or lab name may be. Names become folder and file names, so nothing a user
/// types can leave the library folder (DESIGN.md rule 4).
public enum NameRules {
  public static let maximumLength = 64

  /// Letters, digits, `-`, `_` and `.`, starting with a letter or digit; no `..`; at most 64.
  public static func validate(_ name: String, as what: String) throws {
    let allowed = name.unicodeScalars.allSatisfy {
      ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "-_.".unicodeScalars.contains($0)
    }
    guard !name.isEmpty, name.count <= maximumLength, allowed, !name.contains(".."),
      let first = name.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first)
    else {
      let shown = name.unicodeScalars.map {
        $0.isASCII && $0.value >= 32 ? String($0) : "\\u{\(String($0.value, radix: 16))}"
      }
      .joined()
      throw LabKitError(
        .invalidName,
        "\(what) name '\(shown.prefix(80))' is not allowed: use 1 to \(maximumLength) letters, digits, '-', '_' or '.', starting with a letter or digit"
      )
    }
  }

  /// The form in which two VM or lab names are compared: `Web01` and `web01` are one name. Names
  /// are ASCII (see `validate`), so lowercasing is the whole of case folding.
  public static func key(_ name: String) -> String { name.lowercased() }

  public static let maximumCheckpointLength = 128

  /// Checkpoint names are shown, never used in paths, so they may hold spaces, slashes and more:
  /// 1 to 128 characters, not only spaces, and no control characters.
  public static func validateCheckpoint(_ name: String) throws {
    let control = name.unicodeScalars.contains { $0.properties.generalCategory == .control }
    guard !name.isEmpty, name.count <= maximumCheckpointLength, !control,
      !name.allSatisfy({ $0.isWhitespace })
    else {
      let shown = name.unicodeScalars.map {
        $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0)
      }.joined()
      throw LabKitError(
        .invalidName,
        "checkpoint name '\(shown.prefix(80))' is not allowed: use 1 to \(maximumCheckpointLength) characters, not only spaces and no control characters"
      )
    }
  }
}
