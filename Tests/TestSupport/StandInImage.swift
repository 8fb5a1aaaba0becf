import Foundation

/// An image template that is only bytes: `templates/NAME/` in a library, with an `image.json` as
/// `vmlab image build` writes it and seeded random files for the kernel, initrd and root disk. The
/// cluster's template copies move files and check them; they never boot them, so tests of those
/// need no real image build.
public enum StandInImage {
  /// The files besides `image.json`, with their sizes.
  public static let files = [("vmlinuz", 1_300_000), ("initrd.img", 2_700_001), ("root.vhd", 512), ("empty", 0)]

  /// Makes the template; returns its folder.
  @discardableResult
  public static func make(_ name: String = "tiny", in library: String, seed: UInt64 = 7) throws -> String {
    let folder = "\(library)/templates/\(name)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var random = SeededBytes(seed: seed)
    for (file, size) in files {
      try Data(random.bytes(size)).write(to: URL(fileURLWithPath: "\(folder)/\(file)"))
    }
    let manifest = """
      {"name": "\(name)", "built": "2026-11-30T10:00:00Z", "kernel": "vmlinuz", "initrd": "initrd.img",
       "rootDisk": "root.vhd", "commandLine": "console=ttyS0", "kernelVersion": "6.1.0-test",
       "modules": [], "packages": [], "readyMarker": "ready"}
      """
    try Data(manifest.utf8).write(to: URL(fileURLWithPath: "\(folder)/image.json"))
    return folder
  }

  /// Every file of a template folder by name, with its bytes (hidden ones too).
  public static func contents(of folder: String) throws -> [String: Data] {
    var found: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
      found[name] = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)"))
    }
    return found
  }
}
