import Foundation

public enum JobStatus: String, Codable, Sendable {
  case queued
  case running
  case completed
  case failed

  public var isFinished: Bool { self == .completed || self == .failed }
}

/// An operation running asynchronously, persisted with its status, progress, timings and error.
public struct Job: Codable, Equatable, Sendable {
  public var id: Int64
  public var kind: String
  /// The VM (or lab) it works on.
  public var target: String
  public var status: JobStatus
  /// 0 to 1.
  public var progress: Double
  public var created: Date
  public var started: Date?
  public var finished: Date?
  public var error: String?
  /// What it produced, in a line (for example the checkpoint's id and name).
  public var result: String?

  /// A job another engine ran (a cluster's), as a script sees it.
  public init(
    id: Int64, kind: String, target: String, status: JobStatus, progress: Double, created: Date,
    started: Date? = nil, finished: Date? = nil, error: String? = nil, result: String? = nil
  ) {
    self.id = id
    self.kind = kind
    self.target = target
    self.status = status
    self.progress = progress
    self.created = created
    self.started = started
    self.finished = finished
    self.error = error
    self.result = result
  }

  init(_ record: JobRecord) {
    id = record.id!
    kind = record.kind
    target = record.target
    status = record.status
    progress = record.progress
    created = record.created
    started = record.started
    finished = record.finished
    error = record.error
    result = record.result
  }

  /// Seconds from start to finish (or to now while running).
  public var duration: TimeInterval? {
    started.map { (finished ?? Date()).timeIntervalSince($0) }
  }
}
