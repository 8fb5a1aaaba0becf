import Foundation

/// VHD time stamps count seconds from 2000-01-01 00:00:00 UTC (Unix time 946684800).
public enum VHDTimestamp {
  static let epoch: TimeInterval = 946_684_800

  public static func from(_ date: Date) -> UInt32 {
    let seconds = date.timeIntervalSince1970 - epoch
    return UInt32(clamping: Int64(seconds.rounded(.down)))
  }

  public static func date(_ stamp: UInt32) -> Date {
    Date(timeIntervalSince1970: epoch + TimeInterval(stamp))
  }
}
