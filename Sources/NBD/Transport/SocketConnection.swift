import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One connected stream socket: exact reads on the receiving thread, whole messages sent under a
/// lock so replies from concurrent requests never interleave. Owns the descriptor.
///
/// One of the few types that touch raw buffers and descriptors; the protocol code above it speaks
/// in messages.
final class SocketConnection: @unchecked Sendable {
  private let descriptor: Int32
  private let sendLock = NSLock()
  private let stateLock = NSLock()
  private var isClosed = false
  /// Set once a send failed: the peer is gone, later replies are dropped.
  private var sendFailed = false

  init(descriptor: Int32) {
    self.descriptor = descriptor
  }

  deinit {
    close()
    inbox.deallocate()
  }

  /// Makes a receive that waits longer than `seconds` fail (0: wait for ever).
  func setReceiveTimeout(_ seconds: Double) {
    var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
    _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
  }

  /// Bytes received but not yet asked for: a client that pipelines requests has several headers in
  /// one `recv`. Used only by the one thread that receives.
  private let inbox = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
  private var inboxStart = 0
  private var inboxEnd = 0

  /// Reads exactly `buffer.count` bytes. False when the peer closed the connection (or it failed)
  /// before all of them arrived. Small reads go through the inbox; large ones (payloads) land in
  /// `buffer` directly once the inbox is empty.
  func receive(into buffer: UnsafeMutableRawBufferPointer) -> Bool {
    guard let base = buffer.baseAddress else { return true }
    var done = min(buffer.count, inboxEnd - inboxStart)
    if done > 0 {
      base.copyMemory(from: inbox.baseAddress! + inboxStart, byteCount: done)
      inboxStart += done
    }
    while done < buffer.count {
      let wanted = buffer.count - done
      if wanted >= inbox.count / 4 {
        let count = recv(descriptor, base + done, wanted, 0)
        if count > 0 {
          done += count
        } else if !(count < 0 && errno == EINTR) {
          return false
        }
        continue
      }
      let count = recv(descriptor, inbox.baseAddress!, inbox.count, 0)
      if count > 0 {
        let taken = min(count, wanted)
        (base + done).copyMemory(from: inbox.baseAddress!, byteCount: taken)
        done += taken
        inboxStart = taken
        inboxEnd = count
      } else if !(count < 0 && errno == EINTR) {
        return false
      }
    }
    return true
  }

  /// Reads exactly `count` bytes, or nil when the connection ended first.
  func receive(count: Int) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: count)
    let complete = bytes.withUnsafeMutableBytes { receive(into: $0) }
    return complete ? bytes : nil
  }

  /// Reads and drops `count` bytes through a small scratch buffer (memory stays bounded).
  func discard(count: UInt64) -> Bool {
    var left = count
    var scratch = [UInt8](repeating: 0, count: 64 << 10)
    while left > 0 {
      let piece = Int(min(left, UInt64(scratch.count)))
      let complete = scratch.withUnsafeMutableBytes {
        receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<piece]))
      }
      if !complete { return false }
      left -= UInt64(piece)
    }
    return true
  }

  /// Sends the parts as one message (a gather write), whole or not at all as far as other senders
  /// see. False when the peer is gone.
  @discardableResult
  func send(_ parts: [UnsafeRawBufferPointer]) -> Bool {
    sendLock.lock()
    defer { sendLock.unlock() }
    if sendFailed { return false }
    var vectors = parts.filter { $0.count > 0 }.map {
      iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
    }
    var index = 0
    while index < vectors.count {
      let batch = min(vectors.count - index, 512)
      let sent = vectors.withUnsafeMutableBufferPointer { all -> Int in
        var message = msghdr()
        message.msg_iov = all.baseAddress! + index
        message.msg_iovlen = batch
        return sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        sendFailed = true
        return false
      }
      // Skip what went out; a partial send leaves the rest of a vector for the next round.
      var left = sent
      while left > 0 && index < vectors.count {
        if left >= vectors[index].iov_len {
          left -= vectors[index].iov_len
          index += 1
        } else {
          vectors[index].iov_base = vectors[index].iov_base! + left
          vectors[index].iov_len -= left
          left = 0
        }
      }
      while index < vectors.count && vectors[index].iov_len == 0 { index += 1 }
    }
    return true
  }

  @discardableResult
  func send(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { send([$0]) }
  }

  /// Ends both directions, waking a thread blocked in `receive`; the descriptor stays open until
  /// `close`, so no other file can take its number while a request still holds this connection.
  func shutdown() {
    stateLock.lock()
    defer { stateLock.unlock() }
    if !isClosed { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }
  }

  func close() {
    stateLock.lock()
    defer { stateLock.unlock() }
    guard !isClosed else { return }
    isClosed = true
    _ = Glibc.close(descriptor)
  }
}
