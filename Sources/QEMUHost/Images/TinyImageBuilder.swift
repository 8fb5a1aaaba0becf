import Foundation
import LabKit
import VHD

#if canImport(Glibc)
  import Glibc
#endif

/// Builds the `tiny` image from Debian packages only: the kernel the metapackage
/// `linux-image-amd64` names, busybox-static, and the real qemu-guest-agent with the shared
/// libraries it needs. Nothing is installed on the host: packages are downloaded with
/// `apt-get download` into a cache and unpacked with `dpkg-deb -x` into a work folder.
///
/// The result, in `<library>/templates/tiny/`: the kernel (`vmlinuz`); an initramfs (`initrd.img`,
/// cpio newc + gzip) holding busybox and the modules that reach the root disk; the root file
/// system as a dynamic VHD (`root.vhd`, ext4 made by `mke2fs -d` from a folder, imported with
/// vmlab's own VHD engine); and `image.json`. The image is built in a hidden folder beside its
/// final place and renamed into it at the end, so an interrupted build leaves no half image.
public struct TinyImageBuilder {
  public let templates: ImageTemplates
  /// Where downloaded .deb files are kept between builds.
  public var cache: String
  /// Options for apt (`-o NAME=VALUE`); tests use them to cut apt off from the mirror.
  public var aptOptions: [String] = []
  /// The size of the root file system (the disk's virtual size; unwritten blocks take no space).
  public var rootSize: UInt64 = 256 << 20
  /// Called with one line per step.
  public var progress: (String) -> Void

  public static let imageName = "tiny"
  static let rootDevice = "/dev/vda"
  /// ttyS0 is the serial console the supervisor logs; panic=-1 reboots at once on a panic, so a
  /// guest started with `-no-reboot` ends instead of hanging.
  static let commandLine = "console=ttyS0 root=/dev/vda rw loglevel=4 panic=-1"
  /// What the initramfs loads to reach the root disk and the agent's port, by name: the order
  /// and the rest (virtio_ring, virtio, jbd2, crc32c, …) come from the kernel's own tables.
  static let modules = ["virtio_pci", "virtio_blk", "virtio_console", "ext4"]

  public init(
    templates: ImageTemplates, cache: String? = nil, progress: @escaping (String) -> Void = { _ in }
  ) {
    self.templates = templates
    self.cache = cache ?? DebianPackages.defaultCache()
    self.progress = progress
  }

  /// Builds the image into the library's templates. `replacing`: an image already there is
  /// replaced; otherwise it is an error to build it again. The long part (downloads, unpacking,
  /// file systems) runs without the library; `installing` wraps the final rename, so the caller
  /// can hold the library's lock there and check that no VM uses the image it replaces.
  @discardableResult
  public func build(
    replacing: Bool = false, installing: (_ install: () throws -> Void) throws -> Void = { try $0() }
  ) throws -> ImageManifest {
    let final = templates.folder(of: Self.imageName)
    if FileManager.default.fileExists(atPath: final) && !replacing {
      throw LabKitError(
        .alreadyExists,
        "image '\(Self.imageName)' is already built in \(final); `vmlab image build \(Self.imageName) --rebuild` replaces it when no VM uses it"
      )
    }
    for tool in BuildTool.forImages { _ = try tool.path() }
    let templatesFolder = (final as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: templatesFolder, withIntermediateDirectories: true)
    Self.sweepLeftovers(in: templatesFolder)
    let staging = "\(templatesFolder)/.\(Self.imageName)-building-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: staging) }
    let work = "\(staging)/work"
    let manifest = try build(into: staging, work: work)
    try FileManager.default.removeItem(atPath: work)
    try installing {
      if FileManager.default.fileExists(atPath: final) {
        guard replacing else {
          throw LabKitError(.alreadyExists, "image '\(Self.imageName)' was built in \(final) while this build ran")
        }
        let old = "\(templatesFolder)/.\(Self.imageName)-replaced-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.moveItem(atPath: final, toPath: old)
        try FileManager.default.moveItem(atPath: staging, toPath: final)
        try? FileManager.default.removeItem(atPath: old)
      } else {
        try FileManager.default.moveItem(atPath: staging, toPath: final)
      }
    }
    progress("built image '\(Self.imageName)' in \(final)")
    return manifest
  }

  /// Removes the work folders of builds whose process is gone (killed mid-build): hidden
  /// `.IMAGE-building-PID-…` and `.IMAGE-replaced-PID-…` folders in `templates/`. A build
  /// running in another process keeps its folder.
  static func sweepLeftovers(in templates: String) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: templates)) ?? []
    for name in names where name.hasPrefix(".") && (name.contains("-building-") || name.contains("-replaced-")) {
      let fields = name.split(separator: "-")
      guard fields.count >= 3, let pid = pid_t(fields[fields.count - 2]) else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH {
        try? FileManager.default.removeItem(atPath: "\(templates)/\(name)")
      }
    }
  }

  private func build(into folder: String, work: String) throws -> ImageManifest {
    var packages = DebianPackages(cache: cache, aptOptions: aptOptions, progress: progress)
    packages.progress = progress
    let unpacked = "\(work)/packages"

    progress("resolving the kernel: linux-image-amd64")
    let kernelName = try packages.dependency(of: "linux-image-amd64", matching: "linux-image-")
    let kernel = try packages.fetch(kernelName)
    let busybox = try packages.fetch("busybox-static")
    let agent = try packages.fetch("qemu-guest-agent")
    for package in [kernel, busybox, agent] {
      progress("unpacking \(package.name)")
      try packages.extract(package, into: "\(unpacked)/\(package.name)")
    }

    progress("finding the libraries qemu-ga needs")
    let agentBinary = "\(unpacked)/\(agent.name)/usr/sbin/qemu-ga"
    let libraries = try SharedLibraries(packages: packages, work: unpacked).resolve(program: agentBinary, of: agent)

    progress("indexing the kernel's modules (depmod)")
    let kernelTree = "\(unpacked)/\(kernel.name)"
    let modules = try KernelModules(unpackedKernel: kernelTree)
    let loadOrder = try modules.loadOrder(for: Self.modules)

    let vmlinuz = try kernelImage(in: kernelTree, version: modules.version)
    try FileManager.default.copyItem(atPath: vmlinuz, toPath: "\(folder)/vmlinuz")

    progress("making the initramfs (\(loadOrder.count) modules: \(loadOrder.map(\.name).joined(separator: ", ")))")
    try makeInitramfs(
      at: "\(folder)/initrd.img", busybox: "\(unpacked)/\(busybox.name)/bin/busybox", modules: modules,
      order: loadOrder, work: "\(work)/initramfs")

    progress("making the root file system (ext4, \(ByteCount.format(rootSize)))")
    let rootTree = "\(work)/root"
    try makeRootTree(
      at: rootTree, busybox: "\(unpacked)/\(busybox.name)/bin/busybox", agent: agentBinary, libraries: libraries)
    let rawRoot = "\(work)/root.img"
    try BuildTool.mke2fs.run([
      "-q", "-F", "-t", "ext4", "-L", "tiny-root", "-d", rootTree, "-E", "root_owner=0:0", rawRoot,
      "\(rootSize / 1024)k",
    ])
    progress("importing the root file system as a dynamic VHD")
    let disk = try RawImage.importImage(from: rawRoot, to: "\(folder)/root.vhd", type: .dynamic)
    disk.close()

    var described: [ImageManifest.Package] = [
      .init(name: kernel.name, version: kernel.version, role: "kernel"),
      .init(name: busybox.name, version: busybox.version, role: "busybox"),
      .init(name: agent.name, version: agent.version, role: "agent"),
    ]
    described += libraries.suppliers.filter { $0.name != agent.name }.map {
      .init(name: $0.name, version: $0.version, role: "library of qemu-ga")
    }
    let manifest = ImageManifest(
      name: Self.imageName, built: Date(), kernel: "vmlinuz", initrd: "initrd.img", rootDisk: "root.vhd",
      commandLine: Self.commandLine, kernelVersion: modules.version, modules: loadOrder.map(\.name),
      packages: described, readyMarker: TinyGuestScripts.readyMarker)
    try manifest.write(to: folder)
    packages.pruneCache()
    return manifest
  }

  private func kernelImage(in tree: String, version: String) throws -> String {
    let path = "\(tree)/boot/vmlinuz-\(version)"
    guard FileManager.default.fileExists(atPath: path) else {
      throw LabKitError(.failed, "the kernel package holds no boot/vmlinuz-\(version)")
    }
    return path
  }

  /// The initramfs: busybox, the modules (decompressed when the kernel ships them compressed) and
  /// their load order, and `/init`; packed as cpio newc and gzipped, as the kernel unpacks it.
  private func makeInitramfs(
    at path: String, busybox: String, modules: KernelModules, order: [KernelModules.Module], work: String
  ) throws {
    let files = FileManager.default
    for folder in ["bin", "dev", "proc", "sys", "newroot", "lib/modules"] {
      try files.createDirectory(atPath: "\(work)/\(folder)", withIntermediateDirectories: true)
    }
    try files.copyItem(atPath: busybox, toPath: "\(work)/bin/busybox")
    try files.createSymbolicLink(atPath: "\(work)/bin/sh", withDestinationPath: "busybox")
    for module in order {
      let source = "\(modules.folder)/\(module.path)"
      let target = "\(work)/lib/modules/\(module.name).ko"
      if module.path.hasSuffix(".xz") {
        try BuildTool.xz.run(["-dc", source], outputFile: target)
      } else if module.path.hasSuffix(".zst") {
        try BuildTool.zstd.run(["-dcq", source], outputFile: target)
      } else if module.path.hasSuffix(".gz") {
        try BuildTool.gzip.run(["-dc", source], outputFile: target)
      } else {
        try files.copyItem(atPath: source, toPath: target)
      }
    }
    let loadList = order.map { "\($0.optional ? "?" : "!") \($0.name)\n" }.joined()
    try loadList.write(toFile: "\(work)/lib/modules/load-order", atomically: true, encoding: .utf8)
    try writeScript(TinyGuestScripts.initramfsInit, to: "\(work)/init")

    let cpio = "\((path as NSString).deletingLastPathComponent)/initrd.cpio"
    try BuildTool.cpio.run(
      ["--create", "--format=newc", "--quiet", "--owner=0:0"], in: work, input: Data(archiveList(of: work).utf8),
      outputFile: cpio)
    try BuildTool.gzip.run(["-9", "-n", "-c", cpio], outputFile: path)
    try files.removeItem(atPath: cpio)
  }

  /// The folder mke2fs copies into the root file system.
  private func makeRootTree(
    at root: String, busybox: String, agent: String, libraries: SharedLibraries.Resolution
  ) throws {
    let files = FileManager.default
    let libraryFolder = "lib/x86_64-linux-gnu"
    for folder in [
      "bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "dev", "proc", "sys", "run", "tmp", "root", "mnt", "var",
      "lib64", libraryFolder,
    ] {
      try files.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
    }
    try files.copyItem(atPath: busybox, toPath: "\(root)/bin/busybox")
    try files.createSymbolicLink(atPath: "\(root)/bin/sh", withDestinationPath: "busybox")
    try files.createSymbolicLink(atPath: "\(root)/sbin/init", withDestinationPath: "../bin/busybox")
    try files.createSymbolicLink(atPath: "\(root)/var/run", withDestinationPath: "../run")
    try files.copyItem(atPath: agent, toPath: "\(root)/usr/sbin/qemu-ga")
    for (soname, file) in libraries.libraries.sorted(by: { $0.key < $1.key }) {
      try files.copyItem(atPath: file, toPath: "\(root)/\(libraryFolder)/\(soname)")
    }
    if let interpreter = libraries.interpreter {
      let name = (interpreter as NSString).lastPathComponent
      guard libraries.libraries[name] != nil else {
        throw LabKitError(.failed, "qemu-ga's loader \(interpreter) was not among the libraries found")
      }
      let folder = (interpreter as NSString).deletingLastPathComponent
      try files.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
      if !files.fileExists(atPath: root + interpreter) {
        try files.createSymbolicLink(atPath: root + interpreter, withDestinationPath: "/\(libraryFolder)/\(name)")
      }
    }
    try TinyGuestScripts.inittab.appending("\n").write(toFile: "\(root)/etc/inittab", atomically: true, encoding: .utf8)
    try writeScript(TinyGuestScripts.startup, to: "\(root)/etc/init.d/rcS")
    try writeScript(TinyGuestScripts.agent, to: "\(root)/usr/sbin/vmlab-agent")
    try writeScript(TinyGuestScripts.shutdown, to: "\(root)/sbin/shutdown")
    try "tiny\n".write(toFile: "\(root)/etc/hostname", atomically: true, encoding: .utf8)
    try TinyGuestScripts.passwd.write(toFile: "\(root)/etc/passwd", atomically: true, encoding: .utf8)
    try TinyGuestScripts.group.write(toFile: "\(root)/etc/group", atomically: true, encoding: .utf8)
    try TinyGuestScripts.profile.write(toFile: "\(root)/etc/profile", atomically: true, encoding: .utf8)
  }

  private func writeScript(_ text: String, to path: String) throws {
    try (text + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
  }

  /// Every path under `folder`, relative and sorted (cpio reads the list on its input).
  private func archiveList(of folder: String) throws -> String {
    guard let enumerator = FileManager.default.enumerator(atPath: folder) else {
      throw LabKitError(.failed, "cannot list \(folder)")
    }
    let paths = enumerator.compactMap { $0 as? String }.sorted()
    return paths.map { $0 + "\n" }.joined()
  }
}
