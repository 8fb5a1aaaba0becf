import Foundation
import LabKit

/// Runs one lab checkpoint or restore across hosts as a two-phase commit whose log is the cluster
/// database: it opens the operation (one open per lab), queues a prepare step for every host
/// holding members, waits for them, writes the decision (commit only when every host prepared)
/// before any decide step is queued, then queues the decide steps and waits for them. A host that
/// is dead, fails or is late makes the decision a roll-back; a host that dies after it prepared
/// owes the decision, which its agent carries out when it comes back.
///
/// A coordinator that dies leaves the operation open; the next operation on the lab finishes it
/// (`settle`): decided, it queues what is missing; undecided, it rolls back (presumed abort). The
/// client does this rather than an agent because an agent only knows its own host's steps, and the
/// user who meets the busy lab is the one who wants it finished; agents carry out what is queued.
struct LabCoordinator {
  struct Request: Sendable {
    var lab: String
    var kind: String
    var checkpoint: String?
    var description: String
    var disksOnly: Bool
    var timeout: Double
  }

  let labs: ClusterLabs
  let request: Request
  let progress: @Sendable (LabOperationStatus) -> Void
  private let session: Session
  /// Wakes the waits when a step of the operation ends.
  private let watch = LabStepWatch()
  /// When the coordinator began: without its LISTEN it looks at the steps every 5 ms for the first
  /// seconds (a lab restore's phases take tens of milliseconds, and a look costs about a
  /// millisecond of the database's time), then every 50 ms.
  private let started = Date()

  init(labs: ClusterLabs, request: Request, progress: @escaping @Sendable (LabOperationStatus) -> Void) {
    self.labs = labs
    self.request = request
    self.progress = progress
    session = Session(url: labs.url)
  }

  private var verb: String { request.kind == "checkpoint" ? "checkpointed" : "restored" }

  func run() async throws -> LabOperationStatus {
    do {
      let result = try await coordinate()
      await watch.stop(closing: session)
      return result
    } catch {
      await watch.stop(closing: session)
      throw error
    }
  }

  private func coordinate() async throws -> LabOperationStatus {
    guard request.timeout > 0 else {
      throw ClusterError(.usage, "--timeout must be more than 0 seconds, not \(request.timeout)")
    }
    _ = try await retrying { db in try await db.migrate() }
    // In place before any step is queued, so that the first step's end already wakes the wait.
    await watch.start(on: session)
    var lab = try await retrying { db in try await db.lab(named: request.lab) }
    if let open = lab.operation {
      try await finishLeftOver(open)
      lab = try await retrying { db in try await db.lab(named: request.lab) }
    }
    guard !lab.members.isEmpty else {
      throw ClusterError(.usage, "lab '\(lab.name)' has no VMs; add some with `lab create \(lab.name) VM… --add`")
    }
    let missing = lab.members.filter { $0.host.isEmpty }.map(\.vm)
    if !missing.isEmpty {
      throw ClusterError(
        .notFound,
        "lab '\(lab.name)' was not \(verb): no host holds VM \(missing.map { "'\($0)'" }.joined(separator: ", ")) any more; nothing was done"
      )
    }
    let down = Dictionary(grouping: lab.members.filter { $0.hostState != "alive" }, by: \.host)
    if !down.isEmpty {
      let why = down.sorted { $0.key < $1.key }.map { host, members in
        "host \(host) is \(members[0].hostState) (it holds \(members.map(\.vm).joined(separator: ", ")))"
      }
      throw ClusterError(
        .database,
        "lab '\(lab.name)' was not \(verb): \(why.joined(separator: "; ")); nothing was done on any host. Start its agent (`vmlab agent`) and try again"
      )
    }
    // Not retried: a connection lost while the transaction commits leaves it unknown whether the
    // operation was opened, and a retry would find it and call the lab busy.
    let db = try await session.database()
    guard
      let (operation, job) = try await db.beginLabOperation(
        lab: lab.name, kind: request.kind, checkpoint: request.checkpoint, description: request.description,
        disksOnly: request.disksOnly, createdBy: labs.who, parts: lab.membersByHost)
    else {
      let open = try await retrying { db in try await db.openLabOperation(lab: lab.name) }
      throw ClusterError(.database, busy(open, lab: lab.name))
    }
    watch.watch(job: job)
    return try await carryOut(operation, prepareJob: job)
  }

  // MARK: The two phases

  /// Waits for the prepare steps, decides, queues and waits for the decide steps.
  private func carryOut(_ id: Int64, prepareJob: Int64) async throws -> LabOperationStatus {
    let deadline = Date().addingTimeInterval(request.timeout)
    var shown: LabOperationStatus?
    var touched = Date()
    // The steps were queued a moment ago: the first look waits for one to end (or for a poll),
    // rather than taking the processor from the hosts as they start.
    var looked = Date()
    var decision: (commit: Bool, reason: String)?
    await pause()
    while decision == nil {
      if try await nothingToDecideYet(prepareJob, lookedAt: looked) {
        await pause()
        continue
      }
      looked = Date()
      let status = try await retrying { db in try await db.labOperation(id) }
      if shown != status {
        progress(status)
        shown = status
      }
      if let written = status.decision {
        // Someone took this coordinator for dead and decided (it could not reach the database).
        decision = (written == "commit", status.reason ?? "")
        break
      }
      if let why = prepareFailure(status, deadline: deadline) {
        decision = (false, why)
      } else if status.hosts.allSatisfy({ $0.prepareState == "done" && $0.preparedID != nil }) {
        decision = (true, "every host prepared")
      } else {
        if Date().timeIntervalSince(touched) >= 1 {
          try await retrying { db in try await db.touchLabOperation(id) }
          touched = Date()
        }
        await pause()
      }
    }
    // The decision and the decide steps commit together: no host is told before the decision is
    // durable, and whoever finishes after a crash follows it.
    let wanted = decision!
    let decided = try await retrying { db in
      try await db.decideAndQueueSteps(id, commit: wanted.commit, reason: wanted.reason, createdBy: labs.who)
    }
    watch.watch(job: decided.decideJob)
    let status = try await waitForDecision(id, deadline: deadline, job: decided.decideJob)
    if !status.hostsOwingTheDecision.isEmpty {
      try? await retrying { db in try await db.leaveLabOperation(id) }
      throw LabOperationFailure(message: owing(status, reason: decided.reason), operation: status)
    }
    if !status.finished { try await retrying { db in try await db.finishLabOperation(id) } }
    var finished = status
    finished.finished = true
    guard decided.commit else {
      throw LabOperationFailure(
        message:
          "lab '\(status.lab)' was not \(verb) (rolled back on every host, as it was): \(decided.reason)",
        operation: finished)
    }
    return finished
  }

  /// Why the operation cannot commit, or nil while every host may still prepare.
  private func prepareFailure(_ status: LabOperationStatus, deadline: Date) -> String? {
    var reasons: [String] = []
    for part in status.hosts where part.prepareState != "done" {
      if part.prepareState == "failed" {
        reasons.append("host \(part.host) could not prepare: \(part.prepareError ?? "its step failed")")
      } else if part.hostState != "alive" {
        reasons.append(
          "host \(part.host) is \(part.hostState) (its agent stopped answering) and had not prepared")
      } else if Date() >= deadline {
        reasons.append(
          "host \(part.host) did not prepare within \(formatSeconds(request.timeout)) (its step is \(part.prepareState ?? "not queued"); see --timeout)"
        )
      }
    }
    for part in status.hosts where part.prepareState == "done" && part.preparedID == nil {
      reasons.append("host \(part.host) finished its prepare step but recorded no prepared operation")
    }
    return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
  }

  /// Waits until every decide step is done, or every host that still owes one is down or failed
  /// it, or the deadline (at least a few seconds after the decision) passes. The look that finds
  /// every decide step done closes the operation too.
  private func waitForDecision(_ id: Int64, deadline: Date, job: Int64? = nil) async throws -> LabOperationStatus {
    let until = max(deadline, Date().addingTimeInterval(5))
    var shown: LabOperationStatus?
    var touched = Date()
    // Just after queuing `job`'s steps, as in the first phase, the first look waits.
    var looked = Date.distantPast
    if job != nil {
      looked = Date()
      await pause()
    }
    while true {
      if let job, try await nothingToDecideYet(job, lookedAt: looked) {
        await pause()
        continue
      }
      looked = Date()
      let status = try await retrying { db in try await db.labOperation(id, closingWhenSettled: true) }
      if shown != status {
        progress(status)
        shown = status
      }
      let owing = status.hostsOwingTheDecision
      if owing.isEmpty { return status }
      // Hosts that are alive carry out the decision; waiting for the others is in vain.
      if Date() >= until || owing.allSatisfy({ $0.hostState != "alive" || $0.decideState == "failed" }) {
        return status
      }
      if Date().timeIntervalSince(touched) >= 1 {
        try await retrying { db in try await db.touchLabOperation(id) }
        touched = Date()
      }
      await pause()
    }
  }

  /// Until a step ends (the LISTEN wakes it) or the next poll is due: with the LISTEN in place the
  /// poll only catches what no step announces, such as a host that stopped heartbeating.
  private func pause() async {
    await watch.wake.wait(seconds: pollSeconds)
  }

  private var pollSeconds: Double {
    watch.isListening ? 0.1 : Date().timeIntervalSince(started) < 3 ? 0.005 : 0.05
  }

  /// True when woken between two polls while some step of `job` is still open and none failed:
  /// then the operation as a whole (every host's part and liveness) need not be read again yet. A
  /// poll (`lookedAt` a poll interval ago) always reads it, for what no step announces; so does a
  /// step that said the job has nothing more to wait for, without counting first.
  private func nothingToDecideYet(_ job: Int64, lookedAt: Date) async throws -> Bool {
    guard Date().timeIntervalSince(lookedAt) < pollSeconds, !watch.takeSettled(job: job) else { return false }
    let steps = try await retrying { db in try await db.openAndFailedSteps(job: job) }
    return steps.open > 0 && steps.failed == 0
  }

  // MARK: An operation left open

  /// Finishes the lab's open operation when its coordinator is gone: decided, the missing decide
  /// steps are queued (failed ones again); undecided, it is rolled back (presumed abort: no host
  /// commits without a decision, so rolling back is always safe). Then waits for the decide
  /// steps of hosts that are alive. Throws "busy" while the operation stays open.
  private func finishLeftOver(_ found: LabOperationStatus) async throws {
    var open = found
    let gone = open.coordinatorAge > labs.coordinatorSilence
    guard gone else { throw ClusterError(.database, busy(open, lab: open.lab)) }
    if open.decision == nil {
      let reason =
        "presumed abort: its coordinator, \(open.createdBy), stopped before deciding (silent for \(formatSeconds(open.coordinatorAge)))"
      _ = try await retrying { db in try await db.decideLabOperation(open.id, commit: false, reason: reason) }
    }
    let id = open.id
    _ = try await retrying { db in try await db.queueDecideSteps(id, createdBy: labs.who) }
    _ = try await retrying { db in try await db.requeueFailedDecideSteps(id) }
    try await retrying { db in try await db.touchLabOperation(id) }
    watch.watch(job: try await retrying { db in try await db.labOperation(id) }.decideJob)
    open = try await waitForDecision(id, deadline: Date().addingTimeInterval(request.timeout))
    if open.hostsOwingTheDecision.isEmpty {
      if !open.finished { try await retrying { db in try await db.finishLabOperation(id) } }
      return
    }
    try? await retrying { db in try await db.leaveLabOperation(id) }
    throw ClusterError(.database, busy(open, lab: open.lab))
  }

  // MARK: Messages

  private func busy(_ open: LabOperationStatus?, lab: String) -> String {
    guard let open else {
      return "lab '\(lab)' is busy: another operation on it just started or ended; try again"
    }
    var text =
      "lab '\(lab)' is busy: \(open.summary), started \(utcTime(open.createdAt)) by \(open.createdBy)"
    let owing = open.hostsOwingTheDecision
    if let decision = open.decision, !owing.isEmpty {
      text +=
        "; it is decided (\(decision)) and waits for \(hostList(owing)) to carry it out (the agent runs its queued step when it comes back; `lab show \(lab)` shows it)"
    } else if open.decision == nil {
      text += "; it is still preparing. Nothing of this command was done; try again when it has finished"
    }
    return text
  }

  private func owing(_ status: LabOperationStatus, reason: String) -> String {
    let owing = status.hostsOwingTheDecision
    let decision = status.decision == "commit" ? "commit" : "roll-back"
    let outcome =
      status.decision == "commit"
      ? "lab '\(status.lab)' is \(verb) on the hosts that carried out the decision"
      : "lab '\(status.lab)' was not \(verb) (\(reason))"
    let details = owing.map { part -> String in
      var line =
        "host \(part.host) (\(part.hostState)) still owes the \(decision) of its VMs \(part.vms.joined(separator: ", "))"
      if let step = part.decideStep { line += ": decide step \(step) is \(part.decideState ?? "queued")" }
      if let error = part.decideError { line += " (\(error))" }
      return line
    }
    return
      "\(outcome); \(details.joined(separator: "; ")). The decision stands: the host's agent carries it out when it comes back, and the next `lab checkpoint` or `lab restore` on '\(status.lab)' queues again a decide step that failed; `lab show \(status.lab)` and `job list` show it pending"
  }

  private func hostList(_ parts: [LabOperationStatus.HostPart]) -> String {
    (parts.count == 1 ? "host " : "hosts ") + parts.map { "\($0.host) (\($0.hostState))" }.joined(separator: ", ")
  }

  // MARK: The connection

  /// Runs `body`, connecting again after the database failed (it restarted, the network broke)
  /// until `reconnectSeconds` pass; then the error says what happened to the operation.
  private func retrying<T: Sendable>(_ body: (ClusterDatabase) async throws -> T) async throws -> T {
    let deadline = Date().addingTimeInterval(labs.reconnectSeconds)
    while true {
      var used: ClusterDatabase?
      do {
        let db = try await session.database()
        used = db
        return try await body(db)
      } catch let error as ClusterError where error.kind == .database {
        // Only a lost connection is tried again; a statement the database refused is not. A
        // server that shuts down sends its reason before it closes, so give the close a moment.
        if let used, !used.isClosed {
          try await Task.sleep(nanoseconds: 100_000_000)
          if !used.isClosed { throw error }
        }
        await session.reset(failed: used)
        guard Date() < deadline else {
          throw ClusterError(
            .database,
            "\(error.message); gave up after \(formatSeconds(labs.reconnectSeconds)) without the database. An operation it had opened on lab '\(request.lab)' stays open: the next `lab checkpoint` or `lab restore` on it finishes it (rolled back unless it was decided)"
          )
        }
        try await Task.sleep(nanoseconds: 200_000_000)
      }
    }
  }
}

func formatSeconds(_ seconds: Double) -> String {
  seconds >= 1e8 ? "a long time" : String(format: seconds < 10 ? "%.1f s" : "%.0f s", seconds)
}

func utcTime(_ date: Date) -> String {
  let formatter = DateFormatter()
  formatter.locale = Locale(identifier: "en_US_POSIX")
  formatter.timeZone = TimeZone(identifier: "UTC")
  formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
  return formatter.string(from: date)
}
