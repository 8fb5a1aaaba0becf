import Foundation
import LabKit

#if canImport(Glibc)
  import Glibc
#endif

/// Finds out whether KVM really works on this host: on some, `/dev/kvm` opens and a VM can be
/// made, yet the guest never gets past its boot loader (seen here: the kernel hangs after
/// "Probing EDD" while the host burns system time; on this machine qemu's `-cpu host` even aborts
/// on an MSR the host refuses). So the probe boots the library's tiny image with `-accel kvm`
/// and counts KVM as working only when the guest's agent answers within the time limit; qemu
/// is killed either way. The answer is kept in `<library>/accelerator/<host name>.json` with its
/// time and reason, and reused until the host's kernel or qemu changes.
public struct AcceleratorProbe {
  public let library: String
  /// How long the probe guest has to reach its agent (a working KVM boots it in a few seconds).
  public var timeLimit: Double = 20
  public var kvmDevice = "/dev/kvm"

  public init(library: String) {
    self.library = library
  }

  var rememberedFile: String { "\(library)/accelerator/\(Self.hostName()).json" }

  /// The accelerator to use: the override when there is one, else the remembered answer for this
  /// host (same kernel and qemu), else a new probe.
  public func choose(
    override: Hardware.Accelerator = .auto, reprobe: Bool = false, progress: (String) -> Void = { _ in }
  ) throws -> AcceleratorChoice {
    if override != .auto {
      return try answer(
        override == .kvm ? .kvm : .tcg, "chosen with --accel \(override.rawValue); the probe was not run")
    }
    if !reprobe, let remembered = remembered() { return remembered }
    return try probe(progress: progress)
  }

  /// The answer probed earlier on this host, if its kernel and qemu are still the same.
  public func remembered() -> AcceleratorChoice? {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    guard let data = FileManager.default.contents(atPath: rememberedFile),
      let choice = try? decoder.decode(AcceleratorChoice.self, from: data),
      choice.host == Self.hostName(), choice.kernel == Self.kernelRelease(),
      choice.qemu == (try? Self.qemuVersion())
    else { return nil }
    return choice
  }

  /// Probes now and remembers the answer (an answer that needed an image the library lacks is
  /// not remembered, so the probe runs once one is built).
  public func probe(progress: (String) -> Void = { _ in }) throws -> AcceleratorChoice {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: kvmDevice, isDirectory: &isFolder) else {
      return try remember(answer(.tcg, "\(kvmDevice) does not exist (no KVM in this kernel or container)"))
    }
    let descriptor = open(kvmDevice, O_RDWR | O_CLOEXEC)
    guard descriptor >= 0 else {
      let reason = String(cString: strerror(errno))
      return try remember(answer(.tcg, "\(kvmDevice) cannot be opened: \(reason)"))
    }
    Glibc.close(descriptor)
    let templates = ImageTemplates(library: library)
    guard let image = try? templates.manifest(of: TinyImageBuilder.imageName) else {
      return try answer(
        .tcg, "not probed: \(kvmDevice) opens, but the library has no image to boot (`vmlab image build tiny`)")
    }
    progress("probing KVM: booting the tiny image with -accel kvm (at most \(Int(timeLimit)) s)")
    let runtime = "\(NSTemporaryDirectory())vmlab-probe-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: runtime) }
    var settings = ScratchGuest.Settings()
    settings.accelerator = "kvm"
    settings.lifetime = timeLimit + 15
    let guest = try ScratchGuest(
      image: image, templateFolder: templates.folder(of: image.name), runtime: runtime, settings: settings)
    defer { guest.stop() }
    let started = Date()
    try guest.start()
    let deadline = started.addingTimeInterval(timeLimit)
    while Date() < deadline && guest.isRunning {
      if (try? guest.agent.ping(timeout: min(1, max(0.05, deadline.timeIntervalSinceNow)))) != nil {
        let seconds = Date().timeIntervalSince(started)
        var choice = try answer(
          .kvm, "the probe guest reached its agent in \(String(format: "%.1f", seconds)) s with -accel kvm")
        choice.probeSeconds = seconds
        return try remember(choice)
      }
      Thread.sleep(forTimeInterval: 0.2)
    }
    if !guest.isRunning {
      let said = guest.emulatorErrors().split(separator: "\n").last { !$0.contains("warning:") }
      return try remember(
        answer(.tcg, "\(kvmDevice) opened but qemu could not run a KVM guest: \(said.map(String.init) ?? "it ended")"))
    }
    let lastLine = guest.console().split(whereSeparator: \.isNewline).last { !$0.allSatisfy(\.isWhitespace) }
    return try remember(
      answer(
        .tcg,
        "\(kvmDevice) opened but the probe guest did not reach its agent in \(Int(timeLimit)) s"
          + (lastLine.map { " (its console's last line: \($0.prefix(120)))" } ?? " (nothing on its serial console)")))
  }

  private func answer(_ accelerator: AcceleratorChoice.Accelerator, _ reason: String) throws -> AcceleratorChoice {
    AcceleratorChoice(
      accelerator: accelerator, reason: reason, host: Self.hostName(), kernel: Self.kernelRelease(),
      qemu: try Self.qemuVersion())
  }

  private func remember(_ choice: AcceleratorChoice) throws -> AcceleratorChoice {
    var choice = choice
    // Whole seconds, as the file keeps it, so the answer given is the answer remembered.
    choice.probed = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    try FileManager.default.createDirectory(
      atPath: (rememberedFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try encoder.encode(choice).write(to: URL(fileURLWithPath: rememberedFile), options: .atomic)
    return choice
  }

  /// The first line of `qemu-system-x86_64 --version`.
  public static func qemuVersion() throws -> String {
    let output = try BuildTool(name: "qemu-system-x86_64", package: "qemu-system-x86").run(["--version"]).text
    return output.split(separator: "\n").first.map(String.init) ?? "unknown"
  }

  static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    // It becomes a file name.
    return String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }).prefix(64).description
  }

  static func kernelRelease() -> String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }
}
