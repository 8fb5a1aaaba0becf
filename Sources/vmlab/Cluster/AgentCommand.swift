import ArgumentParser
import Cluster
import Dispatch
import Foundation
import LabKit
import QEMUHost

/// `vmlab agent`: this host's member of a cluster (see `Cluster.Agent`).
struct AgentCommand: ParsableCommand, ClusterAware {
  static let configuration = CommandConfiguration(
    commandName: "agent",
    abstract: "Run this host's agent of a cluster: heartbeats, and its own steps of cluster jobs on its library.",
    discussion: """
      It registers the host in the cluster database (a live agent under the same name is refused), \
      heartbeats with the free memory and disk, and runs the steps queued for this host one at a time \
      on the library, each under a lease it renews. It also takes back any host's leases that ran out \
      (the step is queued again, or failed after its last attempt). It runs until SIGTERM or SIGINT, \
      then finishes the step under way and records the host as stopped; a second signal ends it at once.
      """)

  @OptionGroup var cluster: ClusterOptions

  @Option(help: ArgumentHelp("This host's name in the cluster (letters, digits, '-', '_', '.').", valueName: "name"))
  var hostName: String

  @Option(help: "Seconds between heartbeats; the host counts as dead after three missed ones.")
  var heartbeat: Double = 2

  @Option(help: "Seconds a claimed step is held without renewal (renewed every third of it).")
  var lease: Double = 15

  @Option(help: "Longest wait, in seconds, between looks for work when no notification comes.")
  var poll: Double = 2

  @Option(
    help: ArgumentHelp(
      "Offer at most this much memory to cluster VMs (less what its VMs were given); default: the machine's free memory.",
      valueName: "size"))
  var offerMemory: SizeArgument?

  @Option(
    help: ArgumentHelp(
      "Offer at most this much disk to cluster VMs (less their disks at full size); default: the library's free space.",
      valueName: "size"))
  var offerDisk: SizeArgument?

  @Option(
    help:
      "Seconds between comparisons of the library with the cluster's placements (skipped while a local command uses the library)."
  )
  var reconcile: Double = 60

  @OptionGroup var library: LibraryOptions

  func validate() throws {
    for (name, value, range) in [
      ("--heartbeat", heartbeat, 0.1...3600.0), ("--lease", lease, 0.3...86400.0), ("--poll", poll, 0.05...3600.0),
      ("--reconcile", reconcile, 0.1...86400.0),
    ] where !range.contains(value) {
      throw ValidationError("\(name) must be from \(range.lowerBound) to \(range.upperBound) seconds, not \(value)")
    }
    do {
      try NameRules.validate(hostName, as: "host")
    } catch let error as LabKitError {
      throw ValidationError("--host-name: \(error.message)")
    }
  }

  func run() throws {
    var settings = Agent.Settings(url: try cluster.url(), hostName: hostName, library: library.path)
    settings.heartbeatSeconds = heartbeat
    settings.leaseSeconds = lease
    settings.pollSeconds = poll
    settings.offeredMemory = offerMemory.map { Int64(clamping: $0.bytes) }
    settings.offeredDisk = offerDisk.map { Int64(clamping: $0.bytes) }
    settings.buildImage = { image, library, log in
      guard ImageTemplates.buildable.contains(image) else {
        throw LabKitError(
          .invalidArgument,
          "vmlab cannot build an image '\(image)'; it builds: \(ImageTemplates.buildable.joined(separator: ", "))")
      }
      try TinyImageBuilder(templates: ImageTemplates(library: library), progress: log).build()
    }
    settings.reconcileSeconds = reconcile
    var libraryOptions = library
    libraryOptions.wait = true
    let opener = libraryOptions
    let path = library.path
    let name = hostName
    let agent = Agent(
      settings: settings, hostNames: Hosts.registry.names, openLibrary: { try opener.open() },
      openLibraryIfFree: { try Library(at: path, hosts: Hosts.registry, wait: false) },
      log: { line in
        let time = Library.isoTimestamp(Date())
        FileHandle.standardError.write(Data("vmlab agent \(name) \(time): \(line)\n".utf8))
      })
    let asked = SignalCount()
    let signals = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        // The first signal stops it cleanly; a second one ends it at once (its lease runs out).
        if asked.increment() > 1 { _exit(128 + number) }
        agent.stop()
      }
      source.resume()
      return source
    }
    defer { signals.forEach { $0.cancel() } }
    do {
      try runBlocking { try await agent.run() }
    } catch let error as ClusterError where error.kind == .usage {
      throw ValidationError(error.message)
    }
  }
}

/// How many stop signals came, SIGTERM and SIGINT together.
private final class SignalCount: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0

  func increment() -> Int {
    lock.withLock {
      count += 1
      return count
    }
  }
}
