import ArgumentParser
import LabKit
import VHD

struct DiskMerge: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge",
    abstract: "Fold a differencing disk into its parent, then remove it.",
    discussion: """
      What the chain reads does not change: the parent afterwards holds what the child showed. The
      merge is safe to interrupt and run again. It refuses a parent that others read, because their
      contents would change: other differencing disks beside it, or a library's template (a file in
      its templates/ folder, which every linked clone reads); and a disk of a library's VM, whose
      chain the catalog records (use vmlab checkpoint merge). --force overrides that.
      """
  )

  @Argument(help: "The differencing disk to merge.")
  var child: String

  @Flag(help: "Keep the child file after merging (it then no longer adds anything).")
  var keepChild = false

  @Flag(help: "Merge even when other disks read the parent (they change too).")
  var force = false

  func run() throws {
    let chain = try DiskChain.open(child)
    let parent = chain.layers.count > 1 ? chain.layers[1].path : nil
    chain.close()
    if !force, let owner = DiskReaders.owner(of: child) {
      throw LabKitError(
        .conflict,
        "refusing to merge \(absolutePath(child)): it is a disk of VM '\(owner.vm)' in the library \(owner.library), whose catalog records its chain and checkpoints; use `vmlab checkpoint merge`, or pass --force to do it anyway"
      )
    }
    if let parent, !force {
      let readers = try DiskReaders(of: parent, except: child)
      if !readers.isEmpty { throw readers.refusal("merge \(absolutePath(child)) into") }
    }
    let bar = ProgressBar("merging")
    let report = try DiskChain.merge(child: child, removeChild: !keepChild) { bar.update(done: $0, total: $1) }
    bar.finish()
    print("merged \(ByteCount.format(report.bytesMerged)) from \(report.child) into \(report.parent)")
  }
}
