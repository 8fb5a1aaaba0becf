import Foundation

/// Whether a process still runs, read from /proc: a zombie (ended, not yet reaped by a parent that
/// may never reap it) counts as ended, and so does a process whose command line lacks `word` (the
/// recorded pid was reused by another program).
enum ProcessLiveness {
  static func isAlive(_ pid: Int32, runningCommandWith word: String) -> Bool {
    guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
    else { return false }
    guard commandLine.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == word }) else {
      return false
    }
    // "pid (comm) S …": the state follows the last ')', since the command name may hold one.
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X"
  }
}
