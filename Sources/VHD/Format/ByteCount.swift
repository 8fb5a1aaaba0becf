import Foundation

/// Sizes as people type them: `512M`, `4G`, `1.5T`, `65536`, `2MiB` (binary units; B optional).
public enum ByteCount {
  public static func parse(_ text: String) throws -> UInt64 {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    var number = Substring(trimmed)
    var unit = Substring("")
    while let last = number.last, last.isLetter {
      unit.insert(last, at: unit.startIndex)
      number.removeLast()
    }
    let multipliers: [String: UInt64] = [
      "": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
      "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
    ]
    guard let multiplier = multipliers[unit.lowercased()], let value = Double(number), value >= 0,
      value.isFinite, value * Double(multiplier) < Double(UInt64.max / 2)
    else {
      throw VHDError(
        field: "size", .invalidArgument, "'\(text)' is not a size; write bytes or a number with K, M, G or T (512M, 4G)"
      )
    }
    let bytes = value * Double(multiplier)
    guard bytes == bytes.rounded() else {
      throw VHDError(field: "size", .invalidArgument, "'\(text)' is not a whole number of bytes")
    }
    return UInt64(bytes)
  }

  /// `4 GiB`, `512 MiB`, `1.5 KiB`, `17 bytes`.
  public static func format(_ bytes: UInt64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"]
    guard bytes >= 1024 else { return "\(bytes) bytes" }
    var value = Double(bytes)
    var unit = ""
    for candidate in units where value >= 1024 {
      value /= 1024
      unit = candidate
    }
    let rounded = (value * 10).rounded() / 10
    let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    return "\(text) \(unit)"
  }
}
