import Foundation

/// `image.json` in an image's template folder: what to boot and what it was built from.
public struct ImageManifest: Codable, Equatable, Sendable {
  public struct Package: Codable, Equatable, Sendable {
    public var name: String
    public var version: String
    /// Why the image holds it: `kernel`, `busybox`, `agent`, or `library of qemu-ga`.
    public var role: String

    public init(name: String, version: String, role: String) {
      self.name = name
      self.version = version
      self.role = role
    }
  }

  public var name: String
  public var built: Date
  /// File names inside the template folder.
  public var kernel: String
  public var initrd: String
  public var rootDisk: String
  public var commandLine: String
  public var kernelVersion: String
  /// The kernel modules the initramfs loads, in order.
  public var modules: [String]
  public var packages: [Package]
  /// The line the guest prints on its serial console once its agent is started.
  public var readyMarker: String

  public static let fileName = "image.json"

  public init(
    name: String, built: Date, kernel: String, initrd: String, rootDisk: String, commandLine: String,
    kernelVersion: String, modules: [String], packages: [Package], readyMarker: String
  ) {
    self.name = name
    self.built = built
    self.kernel = kernel
    self.initrd = initrd
    self.rootDisk = rootDisk
    self.commandLine = commandLine
    self.kernelVersion = kernelVersion
    self.modules = modules
    self.packages = packages
    self.readyMarker = readyMarker
  }

  public func write(to folder: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    try encoder.encode(self).write(to: URL(fileURLWithPath: "\(folder)/\(Self.fileName)"), options: .atomic)
  }

  public static func read(from folder: String) throws -> ImageManifest {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try decoder.decode(
      ImageManifest.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(fileName)")))
  }
}
