import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// A program started with posix_spawn: standard input from /dev/null, standard output and error
/// appended to a log file, optionally in a session of its own (a supervisor, which must outlive the
/// vmlab command that started it). A thread of this process reaps it, so it never lingers as a
/// zombie and `exitStatus` tells how it ended.
public final class ChildProcess: @unchecked Sendable {
  public let pid: pid_t
  private let condition = NSCondition()
  private var status: Int32?

  public init(executable: String, arguments: [String], log: String, newSession: Bool) throws {
    Self.inheritNothingElse()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // POSIX_SPAWN_SETSID (glibc's spawn.h, hidden behind _GNU_SOURCE from Swift).
    if newSession { posix_spawnattr_setflags(&attributes, 0x80) }
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      environment.forEach { free($0) }
    }
    var child: pid_t = 0
    let spawned = posix_spawn(&child, executable, &actions, &attributes, argv, environment)
    guard spawned == 0 else {
      throw LabKitError(.failed, "cannot start \(executable): \(String(cString: strerror(spawned)))")
    }
    pid = child
    let spawnedPid = child
    Thread.detachNewThread { [self] in
      var result: Int32 = 0
      while waitpid(spawnedPid, &result, 0) < 0 && errno == EINTR {}
      condition.withLock {
        status = result
        condition.broadcast()
      }
    }
  }

  /// Marks every descriptor above 2 close-on-exec, so the child gets only its three. A supervisor
  /// outlives the command that started it: had it kept a copy of that command's descriptors (the
  /// socket Foundation watches to learn that a child ended, a pipe a caller reads to its end), the
  /// caller would wait for the VM to stop. (glibc's addclosefrom_np is not visible from Swift.)
  private static func inheritNothingElse() {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
      guard let descriptor = Int32(name), descriptor > 2 else { continue }
      let flags = fcntl(descriptor, F_GETFD)
      if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
    }
  }

  /// The raw wait status once it ended, nil while it runs.
  public var exitStatus: Int32? { condition.withLock { status } }

  /// Waits up to `timeout` seconds for the end; returns the wait status, nil if it still runs.
  @discardableResult
  public func wait(timeout: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(timeout)
    condition.lock()
    defer { condition.unlock() }
    while status == nil && condition.wait(until: deadline) {}
    return status
  }

  /// How a wait status reads for people: `exited with status 1`, `was killed by signal 9`.
  public static func describe(_ status: Int32) -> String {
    let signal = status & 0x7f
    if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
    return "was killed by signal \(signal)"
  }
}
