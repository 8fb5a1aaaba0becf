import ArgumentParser
import Foundation
import LabKit
import QEMUHost
import VHD

struct ImageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "image", abstract: "Build and list the guest images VMs boot (from Debian packages).",
    subcommands: [ImageBuild.self, ImageList.self])
}

struct ImageBuild: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "build",
    abstract: "Build an image into the library's templates/ from Debian packages (apt-get download, no install).",
    discussion: """
      tiny: Debian's kernel, busybox-static and qemu-guest-agent with its libraries; an initramfs with the \
      virtio and ext4 modules; a 256 MiB ext4 root disk as a dynamic VHD. Downloads (about 75 MB) are kept in \
      ${XDG_CACHE_HOME:-~/.cache}/vmlab/debs. Built once per library; --rebuild replaces it when no VM uses it.
      """)

  @Argument(help: "The image to build: tiny.")
  var image: String

  @Flag(help: "Replace the image when it is already built (refused while a VM uses it).")
  var rebuild = false

  @Option(help: ArgumentHelp("With --cluster: the host whose agent builds it.", valueName: "name"))
  var hostName: String?

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    guard ImageTemplates.buildable.contains(image) else {
      throw ValidationError(
        "vmlab cannot build an image '\(image)'; it builds: \(ImageTemplates.buildable.joined(separator: ", "))")
    }
    if cluster.isSet {
      if rebuild { throw ValidationError("--rebuild is not taken with --cluster; rebuild it in that host's library") }
      return try ClusterImageBuild(image: image, host: hostName, cluster: cluster).run()
    }
    if hostName != nil {
      throw ValidationError(
        "--host-name builds the image on a cluster's host: give --cluster URL (or set VMLAB_CLUSTER)")
    }
    // The library is held only to check and to put the image in place, not while downloading.
    let root = try checkedLibrary { _ in }
    let templates = ImageTemplates(library: root)
    let started = Date()
    let builder = TinyImageBuilder(templates: templates) { line in
      print("image build: \(line)")
      fflush(nil)
    }
    let manifest = try builder.build(replacing: rebuild) { install in
      _ = try checkedLibrary { _ in try install() }
    }
    let disk = "\(templates.folder(of: image))/\(manifest.rootDisk)"
    // The blocks the file really takes: a dynamic VHD's zero pages are holes.
    var status = stat()
    let onDisk = stat(disk, &status) == 0 ? UInt64(status.st_blocks) * 512 : 0
    print(
      "image '\(image)' built in \(String(format: "%.0f", Date().timeIntervalSince(started))) s: kernel \(manifest.kernelVersion), \(manifest.packages.count) packages, root disk \(ByteCount.format(onDisk)) on disk"
    )
  }

  /// Opens the library, refuses an image that is there (without --rebuild) or that a VM uses, and
  /// runs `body` under the library's lock; returns the library folder.
  private func checkedLibrary(_ body: (Library) throws -> Void) throws -> String {
    let library = try self.library.open()
    defer { try? library.close() }
    let templates = ImageTemplates(library: library.root)
    if FileManager.default.fileExists(atPath: templates.folder(of: image)) {
      guard rebuild else {
        throw LabKitError(
          .alreadyExists,
          "image '\(image)' is already built in \(templates.folder(of: image)); `vmlab image build \(image) --rebuild` replaces it when no VM uses it"
        )
      }
      let users = try templates.users(of: image, in: library)
      guard users.isEmpty else {
        throw LabKitError(
          .conflict,
          "image '\(image)' is used by VM(s) \(users.joined(separator: ", ")); remove them before rebuilding it (nothing was changed)"
        )
      }
    }
    try body(library)
    return library.root
  }
}

struct ImageList: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List the built images (with --cluster: each image and the hosts holding it).")

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var library: LibraryOptions

  @OptionGroup var cluster: ClusterOptions

  func run() throws {
    if cluster.isSet { return try ClusterImageList(json: json, cluster: cluster).run() }
    let library = try self.library.open()
    defer { try? library.close() }
    let templates = ImageTemplates(library: library.root)
    let images = templates.list()
    if json {
      try printJSON(images)
      return
    }
    guard !images.isEmpty else {
      print("no images in \(library.root); `vmlab image build tiny` builds one")
      return
    }
    let users = try images.map { try templates.users(of: $0.name, in: library) }
    let formatter = ISO8601DateFormatter()
    var table = TextTable("IMAGE", "KERNEL", "BUILT", "PACKAGES", "USED BY")
    for (image, users) in zip(images, users) {
      table.add(
        image.name, image.kernelVersion, formatter.string(from: image.built), "\(image.packages.count)",
        users.isEmpty ? "-" : users.joined(separator: ","))
    }
    table.print()
  }
}
