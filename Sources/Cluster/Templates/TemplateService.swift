import Foundation

/// The agent's template work beside its steps: it registers the library's templates, and sends
/// those other hosts ask for. Sending never waits behind a step (a host busy with a long step
/// still serves its templates), and it is woken by `fire()` (the agent LISTENs on
/// `transfersChannel` for it), with polling as the fallback. It also prunes the cluster's finished
/// and abandoned transfers (`TransferPruning`).
final class TemplateService: @unchecked Sendable {
  let host: String
  let library: String
  let pollSeconds: Double
  let pruning: TransferPruning
  let log: @Sendable (String) -> Void
  private let session: Session
  private let registrar: TemplateRegistrar
  private let wake = WakeSignal()

  init(
    url: ClusterURL, host: String, library: String, pollSeconds: Double, pruning: TransferPruning = TransferPruning(),
    log: @escaping @Sendable (String) -> Void
  ) {
    self.host = host
    self.library = library
    self.pollSeconds = pollSeconds
    self.pruning = pruning
    self.log = log
    session = Session(url: url)
    registrar = TemplateRegistrar(host: host, library: library)
  }

  /// Asks for a look now (a template was built or pulled).
  func fire() { wake.fire() }

  /// Runs until the task is cancelled.
  func run() async {
    TemplateRegistrar.sweepLeftovers(library: library)
    await work()
    await session.close()
  }

  private func work() async {
    // The monotonic time of the last pruning round (nil: none yet, so the first is at start).
    var pruned: TimeInterval?
    while !Task.isCancelled {
      do {
        let db = try await session.database()
        for line in try await registrar.scan(db) { log(line) }
        let now = ProcessInfo.processInfo.systemUptime
        if pruned.map({ now - $0 >= pruning.interval }) ?? true {
          let outcome = try await db.pruneTransfers(pruning)
          pruned = now
          if !outcome.isEmpty { log(outcome.line(pruning)) }
        }
        for transfer in try await db.claimTransfers(source: host) {
          log("sending template '\(transfer.image)' to host \(transfer.target) (transfer \(transfer.id))")
          do {
            let bytes = try await TemplateSender(db: db, library: library).send(transfer)
            log("sent template '\(transfer.image)' to host \(transfer.target): \(bytes) bytes")
          } catch {
            log("could not send template '\(transfer.image)' to host \(transfer.target): \(error)")
          }
        }
      } catch {
        await session.reset()
      }
      // A wait is ended by a wake only: the agent's stop cancels this task, and wakes it.
      let wake = self.wake
      await withTaskCancellationHandler {
        await wake.wait(seconds: pollSeconds)
      } onCancel: {
        wake.fire()
      }
    }
  }
}

/// The channel source agents listen on for transfer requests (the payload names the source host).
let transfersChannel = "vmlab_transfers"
