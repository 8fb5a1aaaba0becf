import Foundation

/// Runs async cluster code from the command line's synchronous commands: the calling thread waits
/// while `body` runs on Swift's cooperative pool (the caller is never one of its threads).
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
  let box = ResultBox<T>()
  let done = DispatchSemaphore(value: 0)
  Task {
    do {
      box.result = .success(try await body())
    } catch {
      box.result = .failure(error)
    }
    done.signal()
  }
  done.wait()
  return try box.result!.get()
}

/// The result handed from the task to the waiting thread; the semaphore orders the two accesses.
private final class ResultBox<T>: @unchecked Sendable {
  var result: Result<T, Error>?
}
