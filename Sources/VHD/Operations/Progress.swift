/// Reports how far a long operation has come. A handler may throw to stop the operation; every
/// operation that takes one is safe to stop and run again.
public typealias ProgressHandler = (_ done: UInt64, _ total: UInt64) throws -> Void
