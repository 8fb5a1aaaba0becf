import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Lets a command return at once while its jobs run on: the command starts itself again as a
/// background process (in its own session, so closing the terminal or Ctrl-C does not stop it),
/// which opens the library, queues the jobs, prints what the user needs (the job ids) and then lets
/// go of the terminal while it runs them. Jobs run inside a vmlab process, and this one outlives
/// the command.
///
/// The first process relays what the background one prints until it lets go, and exits with its
/// status: 1 with its error when it failed before queueing anything, 0 once the jobs are queued.
enum BackgroundProcess {
  /// Set in the background process's environment: the descriptor on which it reports that it let go.
  private static let statusVariable = "VMLAB_BACKGROUND_STATUS_FD"
  private static let statusDescriptor: Int32 = 3

  /// True in the background process (the variable is removed, so that anything it starts is not).
  static let isBackground: Bool = {
    guard ProcessInfo.processInfo.environment[statusVariable] != nil else { return false }
    unsetenv(statusVariable)
    _ = setsid()
    return true
  }()

  /// Runs this command line again in the background, relays its output until it lets go, and
  /// exits with its status.
  static func startAndRelay() -> Never {
    var output: [Int32] = [0, 0]
    var errors: [Int32] = [0, 0]
    var status: [Int32] = [0, 0]
    guard pipe(&output) == 0, pipe(&errors) == 0, pipe(&status) == 0 else {
      fail("cannot start the background process: \(String(cString: strerror(errno)))")
    }
    output = output.map(raised)
    errors = errors.map(raised)
    status = status.map(raised)
    inheritNothingElse()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    posix_spawn_file_actions_adddup2(&actions, status[1], statusDescriptor)
    let executable = "/proc/self/exe"
    let arguments = CommandLine.arguments
    var environment = ProcessInfo.processInfo.environment
    environment[statusVariable] = String(statusDescriptor)
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    close(output[1])
    close(errors[1])
    close(status[1])
    guard spawned == 0 else { fail("cannot start the background process: \(String(cString: strerror(spawned)))") }

    // Both streams are copied as they come (a full pipe must never block the other side).
    let relay = DispatchGroup()
    for (from, to) in [(output[0], Int32(1)), (errors[0], Int32(2))] {
      relay.enter()
      Thread.detachNewThread {
        copyAll(from, to)
        relay.leave()
      }
    }
    var letGo: UInt8 = 0
    let reported = read(status[0], &letGo, 1) == 1
    relay.wait()
    if reported { exit(0) }
    // It ended before letting go: it failed, and said why on its standard error.
    var result: Int32 = 0
    while waitpid(pid, &result, 0) < 0 && errno == EINTR {}
    let exited = (result & 0x7f) == 0
    exit(exited ? (result >> 8) & 0xff : 1)
  }

  /// In the background process: everything the user needs is printed; from now on nothing is
  /// written to the terminal (or to the first process's pipes, which close when it exits).
  static func letGo() {
    fflush(nil)
    let null = open("/dev/null", O_WRONLY)
    if null >= 0 {
      dup2(null, 1)
      dup2(null, 2)
      close(null)
    }
    var done: UInt8 = 0
    _ = write(statusDescriptor, &done, 1)
    close(statusDescriptor)
  }

  /// Marks every descriptor above 2 close-on-exec. Whatever this process inherited (the write end
  /// of a pipe its caller reads to the end, for one) must not stay open in the background process,
  /// or the caller would wait for the jobs after all.
  private static func inheritNothingElse() {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
      guard let descriptor = Int32(name), descriptor > 2 else { continue }
      let flags = fcntl(descriptor, F_GETFD)
      if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
    }
  }

  /// The descriptor moved to 10 or above and made close-on-exec: the background process keeps only
  /// the copies on 1 to 3 (dup2 clears the flag), and no copy can land on a pipe still to be copied.
  /// (Closing the pipes by number in the child instead closed a copy that had taken that number.)
  private static func raised(_ descriptor: Int32) -> Int32 {
    let moved = fcntl(descriptor, F_DUPFD_CLOEXEC, 10)
    guard moved >= 0 else { return descriptor }
    close(descriptor)
    return moved
  }

  private static func copyAll(_ from: Int32, _ to: Int32) {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { break }
      var offset = 0
      while offset < count {
        let written = buffer[offset..<count].withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
      }
    }
    close(from)
  }

  private static func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vmlab: error: \(message)\n".utf8))
    exit(1)
  }
}
