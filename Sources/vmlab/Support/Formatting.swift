import Foundation

/// `2026-11-26 21:47:02` in local time, for listings.
func shortDate(_ date: Date) -> String {
  let formatter = DateFormatter()
  formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
  return formatter.string(from: date)
}

/// `1.25 s` or `340 ms`.
func shortDuration(_ seconds: Double) -> String {
  seconds >= 1 ? String(format: "%.2f s", seconds) : String(format: "%.0f ms", seconds * 1000)
}
