import Foundation

/// Bounds what one connection has under way: at most `requests` requests and `bytes` bytes of
/// buffers (a single larger request is still let through alone). The reader waits for room before it
/// takes a request's payload off the socket, so a fast client cannot make the server buffer more.
final class InflightLimit: @unchecked Sendable {
  let requests: Int
  let bytes: Int
  private let condition = NSCondition()
  private var activeRequests = 0
  private var activeBytes = 0
  /// Threads waiting in `acquire` or `waitUntilIdle`: a release wakes someone only when there is one.
  private var waiters = 0

  init(requests: Int = 16, bytes: Int = 64 << 20) {
    self.requests = requests
    self.bytes = bytes
  }

  func acquire(bytes count: Int) {
    condition.lock()
    while activeRequests >= requests || (activeRequests > 0 && activeBytes + count > bytes) {
      waiters += 1
      condition.wait()
      waiters -= 1
    }
    activeRequests += 1
    activeBytes += count
    condition.unlock()
  }

  func release(bytes count: Int) {
    condition.lock()
    activeRequests -= 1
    activeBytes -= count
    if waiters > 0 { condition.broadcast() }
    condition.unlock()
  }

  func waitUntilIdle() {
    condition.lock()
    while activeRequests > 0 {
      waiters += 1
      condition.wait()
      waiters -= 1
    }
    condition.unlock()
  }
}
