import Foundation

/// `2026-11-26 21:47:02` in local time, for listings.
func shortDate(_ date: Date) -> String {
  let formatter = DateFormatter()
  formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
  return formatter.string(from: date)
}

/// `1.25 s` or `340 ms`.
func shortDuration(_ seconds: Double) -> String {
  seconds >= 1 ? printfFormatted("%.2f s", seconds) : printfFormatted("%.0f ms", seconds * 1000)
}

/// One number formatted by the C library's printf, as `String(format:)` formats it, without
/// Foundation's formatter: a lab's table of 20 rows spent 1.4 M instructions in String(format:).
func printfFormatted(_ format: String, _ value: Double) -> String {
  var buffer = [CChar](repeating: 0, count: 64)
  while true {
    let needed = withVaList([value]) { arguments in
      buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, arguments) }
    }
    guard needed >= buffer.count else { return String(cString: buffer) }
    buffer = [CChar](repeating: 0, count: Int(needed) + 1)
  }
}

/// `8,590,417,920`: a byte count people can read digit by digit.
func groupedDigits(_ value: UInt64) -> String {
  let digits = Array(String(value))
  var text = ""
  for (index, digit) in digits.enumerated() {
    if index > 0 && (digits.count - index) % 3 == 0 { text.append(",") }
    text.append(digit)
  }
  return text
}

/// What a user is told when a new disk's size was rounded up to a whole CHS geometry (nil when the
/// size was one already).
func sizeRoundingNote(requested: UInt64, actual: UInt64) -> String? {
  guard actual != requested else { return nil }
  return "size \(groupedDigits(requested)) bytes rounded up to \(groupedDigits(actual)) bytes, a whole CHS geometry, "
    + "so qemu, VirtualBox and Windows agree"
}
