import Foundation

/// The guest images of a library: one folder each in `<library>/templates/<image>/` holding
/// `vmlinuz`, `initrd.img`, `root.vhd` and `image.json`. A VM made from an image reads its
/// `root.vhd` through a linked clone and boots its kernel, so a used image is never replaced.
public struct ImageTemplates: Sendable {
  public let library: String

  /// The images vmlab knows how to build.
  public static let buildable = ["tiny"]

  public init(library: String) {
    self.library = library
  }

  public func folder(of image: String) -> String { "\(library)/templates/\(image)" }

  /// The built images, by name.
  public func list() -> [ImageManifest] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(library)/templates")) ?? []
    return names.sorted().filter { !$0.hasPrefix(".") }.compactMap { try? ImageManifest.read(from: folder(of: $0)) }
  }

  /// The built image `name`, or an error that lists the built ones and says how to build it.
  public func manifest(of name: String) throws -> ImageManifest {
    if let manifest = try? ImageManifest.read(from: folder(of: name)) { return manifest }
    let built = list().map(\.name)
    let have = built.isEmpty ? "no image is built in \(library)" : "built: \(built.joined(separator: ", "))"
    let build =
      Self.buildable.contains(name)
      ? "run `vmlab image build \(name)`" : "vmlab can build \(Self.buildable.joined(separator: ", "))"
    throw LabKitError(.notFound, "image '\(name)' not found (\(have)); \(build)")
  }

  /// The hosts that boot an image's guest (a simulated host runs no guest).
  public static let bootingHosts = ["qemu"]

  /// What a VM made from image `name` starts from: its root disk (disk 1 is a linked clone of
  /// it), the name of the template that clone reads, and its boot: the image's kernel and initrd
  /// with the image's command line and the VM's name as the guest's host name.
  public func vmSetup(image name: String, vm: String) throws -> (
    rootDisk: String, templateName: String, boot: Hardware.Boot
  ) {
    let manifest = try manifest(of: name)
    let folder = folder(of: name)
    return (
      "\(folder)/\(manifest.rootDisk)", "\(name)-root",
      .kernel(
        path: "\(folder)/\(manifest.kernel)", initrd: "\(folder)/\(manifest.initrd)",
        commandLine: "\(manifest.commandLine) vmlab.hostname=\(vm)")
    )
  }

  /// The VMs whose disks or kernel come from the image's folder.
  public func users(of name: String, in library: Library) throws -> [String] {
    let prefix = URL(fileURLWithPath: folder(of: name)).standardizedFileURL.path + "/"
    return try library.vms().filter { vm in
      if case .kernel(let kernel, _, _) = vm.hardware.boot, kernel.hasPrefix(prefix) { return true }
      return vm.disks.contains { $0.chain.contains { $0.hasPrefix(prefix) } }
    }.map(\.name)
  }
}
