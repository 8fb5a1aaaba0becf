import Foundation

/// What a supervisor last recorded in the VM folder: running (with its pids and accelerator), or
/// off and why. A supervisor that was killed leaves `running` behind, so a reader also checks that
/// its control socket answers.
public struct SupervisorStatus: Codable, Equatable, Sendable {
  public enum State: String, Codable, Sendable {
    case starting, running, off
  }

  public var state: State
  public var supervisorPid: Int32
  public var qemuPid: Int32?
  public var accelerator: String?
  /// Why the VM is off: turned off by vmlab, the guest powered off, qemu was killed, …
  public var reason: String?
  public var time: Date

  public init(
    state: State, supervisorPid: Int32, qemuPid: Int32? = nil, accelerator: String? = nil, reason: String? = nil,
    time: Date = Date()
  ) {
    self.state = state
    self.supervisorPid = supervisorPid
    self.qemuPid = qemuPid
    self.accelerator = accelerator
    self.reason = reason
    self.time = time
  }

  public func write(to file: String) {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.sortedKeys]
    try? encoder.encode(self).write(to: URL(fileURLWithPath: file), options: .atomic)
  }

  public static func read(from file: String) -> SupervisorStatus? {
    guard let data = FileManager.default.contents(atPath: file) else { return nil }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try? decoder.decode(SupervisorStatus.self, from: data)
  }
}
