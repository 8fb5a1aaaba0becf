import LabKit

/// The jobs a script queued (every `async = true` call), in order, so that whoever runs it can wait
/// for them at the end and report the ones that failed: a failed job must not pass silently just
/// because the script did not look at it.
public final class QueuedJobs {
  public private(set) var ids: [Int64] = []

  public init() {}

  func record(_ job: Job) {
    ids.append(job.id)
  }

  /// Waits for every queued job; returns those that failed, in the order they were queued.
  public func failures(in engine: any LabEngine) throws -> [Job] {
    try engine.wait(jobs: ids).filter { $0.status == .failed }
  }
}
