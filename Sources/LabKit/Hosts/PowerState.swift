/// Whether a VM runs.
public enum PowerState: String, Codable, Sendable, CaseIterable {
  case stopped
  case running
  /// Suspended with its memory saved; it resumes where it was.
  case saved
}

/// How a host checkpoints a running VM.
public enum HostKind: String, Codable, Sendable, CaseIterable {
  /// Like Virtual Server: a VM is stopped for a checkpoint — shut down gracefully when guest
  /// additions run, otherwise turned off — and the caller is told which.
  case virtualServer = "virtual-server"
  /// Like Hyper-V: a running VM is checkpointed online; its running state is saved with the
  /// checkpoint and comes back on restore.
  case hypervisor
}

/// What happened to a running VM so that an operation could proceed.
public enum PowerAction: String, Codable, Sendable {
  /// It was not running; nothing was needed.
  case none
  /// Shut down gracefully through its guest additions.
  case shutDown = "shut down"
  /// Turned off: it had no guest additions to shut it down gracefully.
  case turnedOff = "turned off"
  /// It was saved: its saved state was discarded and it is off (a checkpoint holds disks only).
  case savedStateDiscarded = "saved state discarded"
  /// Checkpointed or restored while running (hypervisor hosts).
  case online
}
