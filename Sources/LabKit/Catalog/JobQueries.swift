import Foundation
import GRDB

// Jobs: their status as they run, and the history `vmlab job list` shows.

extension CatalogTransaction {
  func job(id: Int64) throws -> JobRecord? { try JobRecord.fetchOne(db, id: id) }

  /// Jobs, newest first.
  func latestJobs(limit: Int) throws -> [JobRecord] {
    try JobRecord.order(JobRecord.Columns.id.desc).limit(limit).fetchAll(db)
  }

  /// The jobs that finished at `date` or later, oldest first.
  func jobs(finishedSince date: Date) throws -> [JobRecord] {
    try JobRecord.filter(JobRecord.Columns.finished >= date).order(JobRecord.Columns.id).fetchAll(db)
  }

  func markJobRunning(id: Int64, at date: Date) throws {
    try JobRecord.filter(key: id).updateAll(
      db, JobRecord.Columns.status.set(to: JobStatus.running), JobRecord.Columns.started.set(to: date))
  }

  func markJobCompleted(id: Int64, at date: Date, result: String?) throws {
    try JobRecord.filter(key: id).updateAll(
      db, JobRecord.Columns.status.set(to: JobStatus.completed), JobRecord.Columns.progress.set(to: 1.0),
      JobRecord.Columns.finished.set(to: date), JobRecord.Columns.result.set(to: result))
  }

  func markJobFailed(id: Int64, at date: Date, error: String) throws {
    try JobRecord.filter(key: id).updateAll(
      db, JobRecord.Columns.status.set(to: JobStatus.failed), JobRecord.Columns.finished.set(to: date),
      JobRecord.Columns.error.set(to: error))
  }

  private var unfinishedJobs: QueryInterfaceRequest<JobRecord> {
    JobRecord.filter([JobStatus.queued, JobStatus.running].contains(JobRecord.Columns.status))
  }

  /// Whether a job is queued or running (in the catalog: perhaps of a process that ended).
  func hasUnfinishedJobs() throws -> Bool { try unfinishedJobs.fetchCount(db) > 0 }

  /// Marks every queued or running job failed with this reason.
  func failUnfinishedJobs(reason: String, at date: Date) throws {
    try unfinishedJobs.updateAll(
      db, JobRecord.Columns.status.set(to: JobStatus.failed), JobRecord.Columns.error.set(to: reason),
      JobRecord.Columns.finished.set(to: date))
  }
}
