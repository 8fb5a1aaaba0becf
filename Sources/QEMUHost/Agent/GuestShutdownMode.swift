/// How `guest-shutdown` ends the guest.
public enum GuestShutdownMode: String, Sendable, CaseIterable {
  /// Power off (the agent runs `shutdown -P`).
  case powerdown
  /// Halt without powering off.
  case halt
  /// Restart.
  case reboot
}
