import ArgumentParser
import VHD

struct DiskMerge: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge",
    abstract: "Fold a differencing disk into its parent, then remove it.",
    discussion: """
      What the chain reads does not change: the parent afterwards holds what the child showed. The
      merge is safe to interrupt and run again. It refuses when other differencing disks beside the
      parent depend on it, because their contents would change; --force overrides that.
      """
  )

  @Argument(help: "The differencing disk to merge.")
  var child: String

  @Flag(help: "Keep the child file after merging (it then no longer adds anything).")
  var keepChild = false

  @Flag(help: "Merge even when other differencing disks use the same parent.")
  var force = false

  func run() throws {
    let others = try DiskChain.otherChildren(ofParentOf: child)
    if !others.isEmpty && !force {
      throw VHDError(
        path: absolutePath(child), field: "parent", .invalidArgument,
        "other disks use the same parent and would change: \(others.joined(separator: ", ")); merge or remove them first, or pass --force"
      )
    }
    let bar = ProgressBar("merging")
    let report = try DiskChain.merge(child: child, removeChild: !keepChild) { bar.update(done: $0, total: $1) }
    bar.finish()
    print("merged \(ByteCount.format(report.bytesMerged)) from \(report.child) into \(report.parent)")
  }
}
