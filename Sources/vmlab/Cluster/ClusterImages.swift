import ArgumentParser
import Cluster
import Foundation
import LabKit

/// `vmlab --cluster URL image build NAME --host-name H`: a `build-image` step on that host; the
/// agent registers the built template, which other hosts then pull when they need it.
struct ClusterImageBuild {
  var image: String
  var host: String?
  var cluster: ClusterOptions

  func run() throws {
    guard let host else {
      throw ValidationError(
        "with --cluster, say which host builds it: --host-name NAME (`vmlab --cluster URL host list`)")
    }
    let image = self.image
    let job = try cluster.withDatabase { db -> ClusterJob in
      let placement = ClusterPlacement(db)
      let id = try await db.submitJob(
        kind: "build-image", target: image,
        steps: [try StepRequest(host: host, kind: .buildImage, ImageStep(image: image))], maxAttempts: 1)
      FileHandle.standardError.write(Data("vmlab: building image '\(image)' on host \(host) (job \(id))\n".utf8))
      return try await placement.wait(for: id)
    }
    let step = job.steps[0]
    guard step.state == "done" else {
      throw ClusterError(.failed, "host \(host) could not build image '\(image)': \(step.error ?? step.state)")
    }
    print("host \(host): \(step.result ?? "done")")
  }
}

/// `vmlab --cluster URL image list`: each image with the hosts that hold its template.
struct ClusterImageList {
  var json: Bool
  var cluster: ClusterOptions

  func run() throws {
    let templates = try cluster.withDatabase { db in try await db.templates() }
    if json { return try printJSON(templates) }
    guard !templates.isEmpty else {
      return print("no images in the cluster; `vmlab --cluster URL image build tiny --host-name HOST` builds one")
    }
    var table = TextTable("IMAGE", "HOSTS", "FILES", "SIZE", "BUILT")
    for image in Array(Set(templates.map(\.image))).sorted() {
      let copies = templates.filter { $0.image == image }
      table.add(
        image, copies.map(\.host).joined(separator: ","), String(copies[0].files.count),
        binarySize(copies.map(\.bytes).max() ?? 0), copies[0].built)
    }
    table.print()
  }
}
