import Foundation

/// The file name of a differencing disk vmlab makes: the base VHD's name, the UTC time stamp of the
/// operation that made it, and the disk's sequence number in the VM.
///
///     <base>_<yyyyMMdd-HHmmss-SSS>_<NN>.vhd      web01-disk1_20261126-214702-123_01.vhd
///
/// `<base>` is the name of the slot's base VHD without `.vhd`; `<NN>` is the slot number, two digits
/// or more. A checkpoint's disks all carry the checkpoint's time stamp, so the files alone say which
/// disks were made together (`library repair` parses them back).
public struct CheckpointFileName: Equatable, Sendable {
  public var base: String
  public var stamp: String
  public var slot: Int

  public init(base: String, stamp: String, slot: Int) {
    self.base = base
    self.stamp = stamp
    self.slot = slot
  }

  public var fileName: String {
    "\(base)_\(stamp)_\(slot < 10 ? "0" : "")\(slot).vhd"
  }

  /// Parses a file name back; nil when it does not follow the pattern.
  public init?(parsing fileName: String) {
    guard fileName.hasSuffix(".vhd") else { return nil }
    let stem = fileName.dropLast(4)
    let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
    guard parts.count >= 3, let slot = Int(parts[parts.count - 1]), slot > 0, parts[parts.count - 1].count >= 2,
      CheckpointFileName.isStamp(String(parts[parts.count - 2]))
    else { return nil }
    let base = parts[0..<(parts.count - 2)].joined(separator: "_")
    guard !base.isEmpty else { return nil }
    self.init(base: base, stamp: String(parts[parts.count - 2]), slot: slot)
  }

  /// `yyyyMMdd-HHmmss-SSS` in UTC.
  public static func stamp(for date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
    func pad(_ value: Int, _ width: Int) -> String {
      let text = String(value)
      return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    let milliseconds = (parts.nanosecond ?? 0) / 1_000_000
    return pad(parts.year!, 4) + pad(parts.month!, 2) + pad(parts.day!, 2) + "-" + pad(parts.hour!, 2)
      + pad(parts.minute!, 2) + pad(parts.second!, 2) + "-" + pad(milliseconds, 3)
  }

  public static func date(fromStamp stamp: String) -> Date? {
    guard isStamp(stamp) else { return nil }
    let digits = stamp.filter(\.isNumber).map { Int(String($0))! }
    func number(_ range: Range<Int>) -> Int { range.reduce(0) { $0 * 10 + digits[$1] } }
    var components = DateComponents()
    components.year = number(0..<4)
    components.month = number(4..<6)
    components.day = number(6..<8)
    components.hour = number(8..<10)
    components.minute = number(10..<12)
    components.second = number(12..<14)
    components.nanosecond = number(14..<17) * 1_000_000
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar.date(from: components)
  }

  static func isStamp(_ text: String) -> Bool {
    let characters = Array(text)
    guard characters.count == 19, characters[8] == "-", characters[15] == "-" else { return false }
    return characters.enumerated().allSatisfy { index, character in
      index == 8 || index == 15 || character.isASCII && character.isNumber
    }
  }
}
