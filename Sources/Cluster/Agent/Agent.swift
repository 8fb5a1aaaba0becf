import Foundation
import LabKit

/// `vmlab agent`: one per host. It registers its host in the cluster database, heartbeats with the
/// machine's free memory and disk, and runs its own host's queued steps on its own library, one at
/// a time, each under a lease that it renews while working and a fence token that every write for
/// the step carries. It also takes back any host's leases that ran out.
public final class Agent: @unchecked Sendable {
  public struct Settings: Sendable {
    public var url: ClusterURL
    public var hostName: String
    /// The library folder, absolute.
    public var library: String
    public var heartbeatSeconds: Double = 2
    /// How long a claim holds without renewal; renewed every third of it.
    public var leaseSeconds: Double = 15
    /// The longest wait between looks for work when no notification comes.
    public var pollSeconds: Double = 2
    /// At most this much memory and disk for cluster VMs (`--offer-memory`, `--offer-disk`); nil:
    /// what the machine has free.
    public var offeredMemory: Int64?
    public var offeredDisk: Int64?
    /// Builds images for `build-image` steps (the executable's image builder).
    public var buildImage: ImageBuilder?
    /// Seconds between comparisons of the library with the cluster's placements (one is made at
    /// start too).
    public var reconcileSeconds: Double = 60

    /// How long a statement may go unanswered before the connection counts as broken: long
    /// enough for a loaded server, short enough to notice a cut link before a lease's renewals
    /// have all been missed by much.
    var answerTimeout: Double { max(5, leaseSeconds / 3) }

    public init(url: ClusterURL, hostName: String, library: String) {
      self.url = url
      self.hostName = hostName
      self.library = library
    }
  }

  let settings: Settings
  /// Opens the agent's library (waiting for another process that holds it); the executable knows
  /// the hosts.
  let openLibrary: @Sendable () throws -> Library
  /// Opens the library only if no other process uses it (a `.busy` error otherwise): a
  /// reconciliation round never waits for a local command.
  let openLibraryIfFree: @Sendable () throws -> Library
  let hostNames: [String]
  let log: @Sendable (String) -> Void
  /// Which agent process holds the host name: machine, pid and start time.
  let identity: String

  private let lock = NSLock()
  private var stopping = false
  private var databaseReachable = true
  private var takenOver = false
  private let wake = WakeSignal()
  /// The library, held open from a step to the next while steps keep coming, and released when
  /// the agent is idle so that local commands can use it.
  private let heldLibrary: HeldLibrary
  private let publishedSummaries = PublishedSummaries()
  private let preparedOperations = PreparedOperations()
  private let session: Session
  private let templateService: TemplateService
  /// What the last reconciliation found, to log only what changed.
  private var lastDifferences: [String] = []

  public init(
    settings: Settings, hostNames: [String], openLibrary: @escaping @Sendable () throws -> Library,
    openLibraryIfFree: @escaping @Sendable () throws -> Library, log: @escaping @Sendable (String) -> Void
  ) {
    self.settings = settings
    self.hostNames = hostNames
    self.openLibrary = openLibrary
    self.openLibraryIfFree = openLibraryIfFree
    heldLibrary = HeldLibrary(open: openLibrary)
    self.log = log
    let started = ISO8601DateFormatter().string(from: Date())
    identity = "\(ProcessInfo.processInfo.hostName) pid \(getpid()) since \(started)"
    session = Session(url: settings.url, answerTimeout: settings.answerTimeout)
    templateService = TemplateService(
      url: settings.url, host: settings.hostName, library: settings.library,
      pollSeconds: min(settings.pollSeconds, 1), log: log)
  }

  /// Asks the agent to stop: it starts no new step, finishes the one under way, records the host
  /// as stopped and returns from `run`.
  public func stop() {
    lock.withLock { stopping = true }
    wake.fire()
  }

  private var isStopping: Bool { lock.withLock { stopping } }

  /// Runs until `stop()`. Throws when it cannot start: a bad host name, an unreachable database, a
  /// host name held by a live agent.
  public func run() async throws {
    do {
      try NameRules.validate(settings.hostName, as: "host")
    } catch let error as LabKitError {
      throw ClusterError(.usage, "--host-name: \(error.message)")
    }
    // The database first: an agent that cannot reach it (a wrong URL) leaves no new library behind.
    let db = try await session.database()
    let (from, to) = try await db.migrate()
    if from != to { log("cluster database schema brought from version \(from) to \(to)") }
    let (vms, publication) = try await onThread { [openLibrary] in
      let library = try openLibrary()
      defer { try? library.close() }
      return try Self.reading(library)
    }
    try await db.register(
      host: settings.hostName, agent: identity, address: ProcessInfo.processInfo.hostName, library: settings.library,
      capacity: .measure(library: settings.library), capabilities: hostNames,
      heartbeatSeconds: settings.heartbeatSeconds)
    if settings.offeredMemory != nil || settings.offeredDisk != nil {
      try await db.setOffer(
        host: settings.hostName, agent: identity, memory: settings.offeredMemory, disk: settings.offeredDisk)
    }
    // Published before the placements are reconciled, so that no placement is without its VM.
    if try await db.publish(publication, host: settings.hostName, agent: identity) {
      publishedSummaries.remember(publication)
    }
    report(try await db.reconcile(host: settings.hostName, agent: identity, vms: vms))
    log(
      "host '\(settings.hostName)' registered (library \(settings.library), \(vms.count) VMs; heartbeat \(settings.heartbeatSeconds) s, lease \(settings.leaseSeconds) s, reconcile every \(settings.reconcileSeconds) s)"
    )

    await withTaskGroup(of: Void.self) { group in
      group.addTask { await self.heartbeats() }
      group.addTask { await self.listen() }
      group.addTask { await self.templateService.run() }
      await self.work()
      group.cancelAll()
    }
    if !lock.withLock({ takenOver }), let db = try? await session.database() {
      try? await db.markStopped(host: settings.hostName, agent: identity)
    }
    await session.close()
    log("stopped")
  }

  // MARK: Heartbeats and taking back leases

  private func heartbeats() async {
    while !Task.isCancelled {
      do {
        let db = try await session.database()
        let held = try await db.heartbeat(
          host: settings.hostName, agent: identity, capacity: .measure(library: settings.library))
        if !held {
          log("another agent took the host name '\(settings.hostName)' (this one was silent too long); stopping")
          lock.withLock { takenOver = true }
          stop()
          return
        }
        for step in try await db.reapExpiredLeases() {
          log(
            "step \(step.id) on host '\(step.host)' \(step.state == "queued" ? "queued again" : "failed"): \(step.error)"
          )
        }
        setReachable(true)
      } catch {
        if Task.isCancelled { return }
        setReachable(false, because: error)
        await session.reset()
      }
      try? await Task.sleep(nanoseconds: UInt64(settings.heartbeatSeconds * 1e9))
    }
  }

  private func setReachable(_ reachable: Bool, because error: Error? = nil) {
    let changed = lock.withLock {
      defer { databaseReachable = reachable }
      return databaseReachable != reachable
    }
    guard changed else { return }
    if reachable {
      log("the cluster database answers again; taking steps")
      wake.fire()
    } else {
      log("cannot reach the cluster database (\(error.map { "\($0)" } ?? "")); starting no new step until it answers")
    }
  }

  // MARK: Wake-ups

  /// LISTENs for queued steps of this host and for templates other hosts ask of it, on the
  /// agent's own connection; reconnects after a failure (polling covers the gap). One connection
  /// rather than one per channel: PostgreSQL wakes every listening backend of the database for every
  /// notification, whatever its channel, so each idle listener costs the whole cluster processor
  /// time on every step of every lab operation.
  private func listen() async {
    let host = settings.hostName
    let (steps, templates) = (wake, templateService)
    while !Task.isCancelled {
      do {
        // Until the connection ends (or the agent stops): then listen again on the next one.
        try await session.database().relay([stepsChannel, transfersChannel]) { channel, payload in
          guard payload == host else { return }
          if channel == stepsChannel { steps.fire() } else { templates.fire() }
        }
      } catch {
        // No connection: the other users of the session make it again, or this loop does.
        if Task.isCancelled { return }
      }
      try? await Task.sleep(nanoseconds: UInt64(settings.pollSeconds * 1e9))
    }
  }

  // MARK: Steps

  /// How long the library stays open after the last step when no other is queued: the second
  /// phase of a lab operation follows the first within milliseconds, and opening the library again
  /// costs about as much as the phase itself.
  static let lingerSeconds = 0.3

  private func work() async {
    var lingered = false
    var nextReconciliation = DispatchTime.now() + settings.reconcileSeconds
    while !isStopping {
      if lock.withLock({ databaseReachable }) {
        // Between steps, so that it never reads the library while a step changes it.
        if DispatchTime.now() >= nextReconciliation {
          await reconcile()
          nextReconciliation = .now() + settings.reconcileSeconds
        }
        do {
          let db = try await session.database()
          if let step = try await db.claimStep(
            host: settings.hostName, agent: identity, leaseSeconds: settings.leaseSeconds)
          {
            lingered = false
            if await execute(step) { continue }
            // Nothing else was queued as the step ended: the next one's notification wakes this.
            lingered = true
            await wake.wait(seconds: min(Self.lingerSeconds, settings.pollSeconds))
            continue
          }
          if !lingered {
            lingered = true
            await wake.wait(seconds: min(Self.lingerSeconds, settings.pollSeconds))
            continue
          }
          // Idle: let local vmlab commands use the library until the next step.
          await releaseLibrary()
        } catch {
          setReachable(false, because: error)
          await session.reset()
          await releaseLibrary()
        }
      }
      let untilReconciliation =
        Double(nextReconciliation.uptimeNanoseconds &- DispatchTime.now().uptimeNanoseconds) / 1e9
      await wake.wait(
        seconds: nextReconciliation > .now() ? min(settings.pollSeconds, untilReconciliation) : settings.pollSeconds)
    }
    await releaseLibrary()
  }

  private func releaseLibrary() async {
    let held = heldLibrary
    _ = await resultOnThread { held.close() }
  }

  /// Runs a claimed step and records its result; true when the agent should ask for another step
  /// at once (another was queued as this one ended, or the database's answer is not known).
  private func execute(_ step: ClaimedStep) async -> Bool {
    let name =
      "step \(step.id) (\(step.kind), job \(step.jobID), attempt \(step.attempt) of \(step.maxAttempts), fence \(step.fence))"
    log("\(name): started")
    let lease = Lease(seconds: settings.leaseSeconds)
    let renewal = Task { await keep(lease, of: step) }
    let held = heldLibrary
    let service = templateService
    let prepared = preparedOperations
    let templates = AgentTemplates(
      url: settings.url, host: settings.hostName, library: settings.library, builder: settings.buildImage, log: log,
      changed: { service.fire() })
    let result: Result<StepRunner.Outcome, Error> = await resultOnThread {
      let library = try held.open()
      var runner = StepRunner(
        library: library, stillHeld: { lease.mayContinue },
        progress: { fraction in
          Task {
            guard let db = try? await self.session.database() else { return }
            if (try? await db.reportProgress(step: step.id, fence: step.fence, progress: fraction)) == false {
              lease.lose("its fence \(step.fence) was refused when it reported progress")
            }
          }
        })
      runner.reopen = {
        held.close()
        return try held.open()
      }
      runner.templates = templates
      runner.preparedOperations = prepared
      return try runner.run(step)
    }
    renewal.cancel()
    // After a failure the library is opened afresh for the next step (opening settles what a
    // failed operation left).
    if case .failure = result { await releaseLibrary() }
    if lease.isRefused || Self.stoppedForLease(result) {
      // A step stopped between parts records nothing: the next attempt skips what is done.
      let reason = lease.lostReason ?? "its lease ran out by this agent's clock (no renewal was answered)"
      log("\(name): abandoned, \(reason); its result is not recorded")
      return true
    }
    if let reason = lease.lostReason {
      // Only this machine's clock says the lease ran out: the database decides by the fence.
      log("\(name): \(reason); offering its result with fence \(step.fence) once the database answers")
    }
    let claimAtOnce = await record(
      result, of: step, name: name, publishing: await publication(after: step, name: name))
    if case .success(let outcome) = result, !outcome.untidied.isEmpty {
      // After the result is recorded: the next step on these VMs would tidy first in any case.
      if case .failure(let error) = await resultOnThread({ try held.open().tidy(vms: outcome.untidied) }) {
        log("\(name): the files its commit replaced could not be removed yet (\(Self.describe(error)))")
      }
    }
    return claimAtOnce
  }

  /// The VMs `step` named, as the library holds them after it (failed or not), to publish with its
  /// result; nil when it names none, they are published already as they are, or they cannot be read
  /// (the next reconciliation publishes them).
  private func publication(after step: ClaimedStep, name: String) async -> VMPublication? {
    guard let names = VMPublication.vmsChanged(by: step) else { return nil }
    let held = heldLibrary
    switch await resultOnThread({ try VMPublication.of(names, in: try held.open()) }) {
    case .success(let publication):
      // A client asks for a description when it found the VM missing from the database (rows
      // deleted behind this agent's back, say): that one always goes out.
      if step.kind == StepKind.describeVMs.rawValue { return publication }
      return publishedSummaries.unpublished(publication)
    case .failure(let error):
      log("\(name): its VMs could not be read to publish them (\(Self.describe(error))); the next reconciliation will")
      return nil
    }
  }

  /// True when the step stopped between two parts because its lease was lost.
  private static func stoppedForLease(_ result: Result<StepRunner.Outcome, Error>) -> Bool {
    if case .failure(let error) = result, error is StepRunner.LeaseLost { return true }
    return false
  }

  /// Records a step's result with its fence, trying again until the database answers (the step's
  /// parts are done in the library; only the database can say whether this claim still owns it).
  /// A stop gives up: the lease runs out and the step is taken back. True when another step should
  /// be asked for at once (see `execute`).
  private func record(
    _ result: Result<StepRunner.Outcome, Error>, of step: ClaimedStep, name: String, publishing: VMPublication?
  ) async -> Bool {
    while true {
      do {
        return try await recordOnce(result, of: step, name: name, publishing: publishing)
      } catch {
        setReachable(false, because: error)
        await session.reset()
        if isStopping {
          log(
            "\(name): its result could not be recorded (\(error)); the step will be taken back when its lease runs out")
          return true
        }
        log("\(name): its result could not be recorded (\(error)); trying again when the database answers")
        await wake.wait(seconds: settings.pollSeconds)
      }
    }
  }

  private func recordOnce(
    _ result: Result<StepRunner.Outcome, Error>, of step: ClaimedStep, name: String, publishing: VMPublication?
  ) async throws -> Bool {
    let db = try await session.database()
    let outcome: (Bool, String)
    let prepared: Int64?
    switch result {
    case .success(let done):
      outcome = (true, done.message)
      prepared = done.prepared
      for vm in done.placed {
        guard
          try await db.placeVM(vm, key: NameRules.key(vm), host: settings.hostName, step: step.id, fence: step.fence)
        else {
          log("\(name): abandoned, its fence \(step.fence) was refused when it recorded VM '\(vm)'")
          return true
        }
      }
    case .failure(let error):
      outcome = (false, Self.describe(error))
      prepared = nil
    }
    guard
      let ending = try await db.finishStep(
        step: step, succeeded: outcome.0, message: outcome.1, publishing: publishing, prepared: prepared,
        host: settings.hostName, agent: identity)
    else {
      log(
        "\(name): abandoned, the database refused its result: fence \(step.fence) is stale (the lease was taken back)"
      )
      return true
    }
    if let publishing { publishedSummaries.remember(publishing) }
    log("\(name): \(outcome.0 ? "done" : "failed"): \(outcome.1)")
    setReachable(true)
    return ending.moreQueued
  }

  /// Renews the lease every third of its length; marks it lost when the fence is refused, or when
  /// the database could not be reached until the lease would have run out.
  private func keep(_ lease: Lease, of step: ClaimedStep) async {
    while !Task.isCancelled {
      try? await Task.sleep(nanoseconds: UInt64(settings.leaseSeconds / 3 * 1e9))
      if Task.isCancelled { return }
      do {
        let db = try await session.database()
        if try await db.renewLease(step: step.id, fence: step.fence, leaseSeconds: settings.leaseSeconds) {
          lease.renewed()
        } else {
          lease.lose("its fence \(step.fence) was refused at renewal: the lease was taken back")
          return
        }
      } catch {
        // Cancelled because the step ended: the database was reachable as far as this knows.
        if Task.isCancelled { return }
        setReachable(false, because: error)
        await session.reset()
        if lease.ranOut {
          lease.lose("its lease ran out while the cluster database could not be reached", refused: false)
          return
        }
      }
    }
  }

  // MARK: Reconciliation

  /// The whole library to publish, and its VMs' names by key (names compared as the engine
  /// compares them) to reconcile the placements with, from one reading.
  static func reading(_ library: Library) throws -> (vms: [String: String], publication: VMPublication) {
    let publication = try VMPublication.whole(library)
    let names = publication.summaries.map { (NameRules.key($0.vm.name), $0.vm.name) }
    return (Dictionary(names, uniquingKeysWith: { a, _ in a }), publication)
  }

  /// Publishes the whole library (changes made by local commands show up within a round), compares
  /// it with the VMs the cluster places on this host, and makes the placements what it holds. Uses
  /// the library if the agent holds it; otherwise opens it only if no local command uses it, and
  /// skips this round if one does.
  private func reconcile() async {
    let (held, openIfFree) = (heldLibrary, openLibraryIfFree)
    let listing: Result<([String: String], VMPublication)?, Error> = await resultOnThread {
      if let library = held.ifOpen { return try Self.reading(library) }
      let library: Library
      do {
        library = try openIfFree()
      } catch let error as LabKitError where error.kind == .busy {
        return nil
      }
      defer { try? library.close() }
      return try Self.reading(library)
    }
    switch listing {
    case .failure(let error):
      log(
        "reconciliation: cannot read the library (\(Self.describe(error))); trying again in \(settings.reconcileSeconds) s"
      )
    case .success(nil):
      log(
        "reconciliation skipped: another vmlab process is using the library; trying again in \(settings.reconcileSeconds) s"
      )
    case .success(let (vms, publication)?):
      do {
        let db = try await session.database()
        if try await db.publish(publication, host: settings.hostName, agent: identity) {
          publishedSummaries.remember(publication)
        }
        report(try await db.reconcile(host: settings.hostName, agent: identity, vms: vms))
      } catch {
        setReachable(false, because: error)
        await session.reset()
      }
    }
  }

  /// Logs what a reconciliation found when it differs from the last round's findings.
  private func report(_ found: LibraryDifferences) {
    let lines = found.lines
    let changed = lock.withLock {
      defer { lastDifferences = lines }
      return lastDifferences != lines
    }
    guard changed else { return }
    if lines.isEmpty { log("reconciliation: the library and the cluster agree") }
    for line in lines { log("reconciliation: \(line)") }
  }

  static func describe(_ error: Error) -> String {
    if let error = error as? LabKitError { return error.message }
    if let error = error as? ClusterError { return error.message }
    return describeFileError(error)
  }
}

/// The agent's library while it is open; opened and closed on the engine's threads.
final class HeldLibrary: @unchecked Sendable {
  private let lock = NSLock()
  private let opener: @Sendable () throws -> Library
  private var library: Library?

  init(open: @escaping @Sendable () throws -> Library) {
    opener = open
  }

  func open() throws -> Library {
    try lock.withLock {
      if let library { return library }
      let opened = try opener()
      library = opened
      return opened
    }
  }

  /// The library if the agent holds it now.
  var ifOpen: Library? { lock.withLock { library } }

  func close() {
    let open = lock.withLock { () -> Library? in
      defer { library = nil }
      return library
    }
    try? open?.close()
  }
}

/// Runs blocking engine work on a thread of its own (not one of Swift's cooperative threads).
func resultOnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async -> Result<T, Error> {
  await withCheckedContinuation { continuation in
    let thread = Thread {
      continuation.resume(returning: Result { try body() })
    }
    thread.stackSize = 8 << 20
    thread.start()
  }
}

func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await resultOnThread(body).get()
}
