import Foundation

/// The transmission phase of one connection: a reader takes requests off the socket in order and
/// hands each to the connection's worker threads (at most 16 under way, bounded bytes); replies go
/// out as requests finish, in any order, each whole. A WRITE is executed only once its whole
/// payload has arrived.
final class Transmission: @unchecked Sendable {
  private let connection: SocketConnection
  private let export: Export
  private let session: Session
  private let limit = InflightLimit()
  /// Shared by every connection: bounds the buffers of the whole server.
  private let serverLimit: InflightLimit
  private let pool: BufferPool
  private let workers: WorkerPool

  init(connection: SocketConnection, export: Export, session: Session, pool: BufferPool, serverLimit: InflightLimit) {
    self.connection = connection
    self.serverLimit = serverLimit
    self.export = export
    self.session = session
    self.pool = pool
    workers = WorkerPool(limit: limit.requests, name: "nbd request")
  }

  /// Serves requests until the client disconnects or breaks the framing; returns once every
  /// request taken has been answered.
  func run() {
    defer {
      limit.waitUntilIdle()
      workers.finish()
    }
    while let header = connection.receive(count: Request.headerSize) {
      guard let request = Request(header: header) else { return }
      switch request.command {
      case Command.disconnect:
        return
      case Command.write:
        // A payload larger than the advertised maximum breaks the protocol: hang up rather than
        // buffer it.
        guard request.length <= BlockSizes.maximum else { return }
        let count = Int(request.length)
        acquire(count)
        let buffer = pool.take(count)
        guard connection.receive(into: buffer.prefix(count)) else {
          // The payload never fully arrived: nothing of it is written.
          pool.give(buffer)
          release(count)
          return
        }
        workers.submit { [self] in
          execute(request, payload: buffer)
          pool.give(buffer)
          release(count)
        }
      default:
        let count = request.command == Command.read ? Int(min(request.length, BlockSizes.maximum)) : 0
        acquire(count)
        workers.submit { [self] in
          execute(request, payload: nil)
          release(count)
        }
      }
    }
  }

  /// Requests up to this size count against their connection only (at most 16 MiB per connection);
  /// larger ones also against the server's budget. Small requests then cost one lock less.
  private static let smallRequest = 1 << 20

  private func acquire(_ bytes: Int) {
    limit.acquire(bytes: bytes)
    if bytes > Transmission.smallRequest { serverLimit.acquire(bytes: bytes) }
  }

  private func release(_ bytes: Int) {
    if bytes > Transmission.smallRequest { serverLimit.release(bytes: bytes) }
    limit.release(bytes: bytes)
  }

  private func execute(_ request: Request, payload: PayloadBuffer?) {
    do {
      guard request.flags & ~request.allowedFlags(session) == 0 else {
        throw RequestFailure(WireError.invalid, "flags \(request.flags) are not valid for command \(request.command)")
      }
      switch request.command {
      case Command.read: try read(request)
      case Command.write: try write(request, payload!)
      case Command.flush: try flush(request)
      case Command.writeZeroes: try writeZeroes(request)
      case Command.trim: try trim(request)
      case Command.blockStatus: try blockStatus(request)
      default: throw RequestFailure(WireError.invalid, "unknown command \(request.command)")
      }
    } catch let failure as RequestFailure {
      replyError(request, failure)
    } catch {
      replyError(request, RequestFailure(error))
    }
  }

  // MARK: Commands

  private func read(_ request: Request) throws {
    guard request.length > 0, request.length <= BlockSizes.maximum else {
      throw RequestFailure(
        WireError.invalid, "a read of \(request.length) bytes; reads take 1 to \(BlockSizes.maximum) bytes")
    }
    guard request.fits(in: export.size) else {
      throw RequestFailure(WireError.invalid, outside(request))
    }
    let count = Int(request.length)
    let buffer = pool.take(count)
    defer { pool.give(buffer) }
    let extents = try export.use { device in
      do { return try device.read(at: request.offset, into: buffer.prefix(count)) } catch {
        throw RequestFailure(error)
      }
    }
    sendRead(request, UnsafeRawBufferPointer(buffer.prefix(count)), extents)
  }

  private func write(_ request: Request, _ payload: PayloadBuffer) throws {
    try checkWritable(request)
    let data = UnsafeRawBufferPointer(payload.prefix(Int(request.length)))
    try export.use { device in
      do { try device.write(data, at: request.offset, durable: request.fua) } catch { throw RequestFailure(error) }
    }
    replySimple(request, error: 0)
  }

  private func flush(_ request: Request) throws {
    guard request.offset == 0 && request.length == 0 else {
      throw RequestFailure(WireError.invalid, "a flush takes offset 0 and length 0")
    }
    try export.use { device in
      do { try device.flush() } catch { throw RequestFailure(error) }
    }
    replySimple(request, error: 0)
  }

  private func writeZeroes(_ request: Request) throws {
    try checkWritable(request)
    let fast = request.flags & CommandFlag.fastZero != 0
    try export.use { device in
      do {
        try device.writeZeroes(at: request.offset, count: UInt64(request.length), fast: fast, durable: request.fua)
      } catch { throw RequestFailure(error) }
    }
    replySimple(request, error: 0)
  }

  private func trim(_ request: Request) throws {
    try checkWritable(request)
    try export.use { device in
      do { try device.trim(at: request.offset, count: UInt64(request.length), durable: request.fua) } catch {
        throw RequestFailure(error)
      }
    }
    replySimple(request, error: 0)
  }

  private func blockStatus(_ request: Request) throws {
    guard session.allocationContext else {
      throw RequestFailure(WireError.invalid, "select the base:allocation context before NBD_CMD_BLOCK_STATUS")
    }
    guard request.length > 0, request.fits(in: export.size) else {
      throw RequestFailure(WireError.invalid, outside(request))
    }
    let one = request.flags & CommandFlag.requestOne != 0
    let extents = try export.use { device in
      do {
        return try device.allocation(at: request.offset, count: UInt64(request.length), limit: one ? 1 : 2048)
      } catch {
        throw RequestFailure(error)
      }
    }
    var payload = ByteWriter(capacity: 4 + extents.count * 8)
    payload.u32(MetaContext.allocationID)
    var described = 0
    // The descriptors may cover less than the request, never more, whatever the device returned.
    var remaining = UInt64(request.length)
    for extent in extents where extent.length > 0 && remaining > 0 {
      let length = min(extent.length, remaining)
      payload.u32(UInt32(length))
      payload.u32(extent.isHole ? AllocationState.hole | AllocationState.zero : 0)
      remaining -= length
      described += 1
    }
    guard described > 0 else { throw RequestFailure(WireError.io, "the device described no extent") }
    var message = chunkHeader(request, flags: ReplyFlag.done, type: ReplyType.blockStatus, length: payload.bytes.count)
    message.bytes(payload.bytes)
    connection.send(message.bytes)
  }

  private func checkWritable(_ request: Request) throws {
    guard !export.isReadOnly else {
      throw RequestFailure(WireError.notPermitted, "the export is read-only")
    }
    guard request.fits(in: export.size) else {
      throw RequestFailure(WireError.noSpace, outside(request))
    }
  }

  private func outside(_ request: Request) -> String {
    "\(request.length) bytes at offset \(request.offset) lie outside the export (\(export.size) bytes)"
  }

  // MARK: Replies

  private func replySimple(_ request: Request, error: UInt32) {
    var reply = ByteWriter(capacity: 16)
    reply.u32(NBDMagic.simpleReply)
    reply.u32(error)
    reply.u64(request.cookie)
    connection.send(reply.bytes)
  }

  /// A read answered with simple replies carries no message; a structured reply carries an error
  /// chunk the client can show. Other commands answer errors with simple replies.
  private func replyError(_ request: Request, _ failure: RequestFailure) {
    guard session.structuredReplies && (request.command == Command.read || request.command == Command.blockStatus)
    else {
      replySimple(request, error: failure.code)
      return
    }
    let text = Array(failure.message.utf8.prefix(4096))
    var message = chunkHeader(request, flags: ReplyFlag.done, type: ReplyType.error, length: 6 + text.count)
    message.u32(failure.code)
    message.u16(UInt16(text.count))
    message.bytes(text)
    connection.send(message.bytes)
  }

  private func chunkHeader(_ request: Request, flags: UInt16, type: UInt16, length: Int) -> ByteWriter {
    var header = ByteWriter(capacity: 20 + 12)
    header.u32(NBDMagic.structuredReply)
    header.u16(flags)
    header.u16(type)
    header.u64(request.cookie)
    header.u32(UInt32(length))
    return header
  }

  /// Sends a read's data: a simple reply, or structured chunks where holes travel as OFFSET_HOLE
  /// (12 bytes instead of their zeros) unless the client asked for one unfragmented chunk.
  private func sendRead(_ request: Request, _ data: UnsafeRawBufferPointer, _ extents: [Extent]) {
    guard session.structuredReplies else {
      var header = ByteWriter(capacity: 16)
      header.u32(NBDMagic.simpleReply)
      header.u32(0)
      header.u64(request.cookie)
      _ = header.bytes.withUnsafeBytes { connection.send([$0, data]) }
      return
    }
    let unfragmented = request.flags & CommandFlag.dontFragment != 0 || !extents.contains(where: \.isHole)
    var pieces: [(range: Range<Int>, isHole: Bool)] = []
    if unfragmented {
      pieces = [(0..<data.count, false)]
    } else {
      var start = 0
      for extent in extents where extent.length > 0 {
        let end = min(data.count, start + Int(extent.length))
        if let last = pieces.last, last.isHole == extent.isHole {
          pieces[pieces.count - 1].range = last.range.lowerBound..<end
        } else {
          pieces.append((start..<end, extent.isHole))
        }
        start = end
      }
      if start < data.count { pieces.append((start..<data.count, false)) }
    }
    // All chunk headers in one array; the data is sent from the read buffer without a copy.
    var headers = ByteWriter(capacity: pieces.count * 32)
    var layout: [(headerRange: Range<Int>, data: Range<Int>?)] = []
    for (index, piece) in pieces.enumerated() {
      let flags = index == pieces.count - 1 ? ReplyFlag.done : 0
      let start = headers.bytes.count
      let offset = request.offset + UInt64(piece.range.lowerBound)
      if piece.isHole {
        var header = chunkHeader(request, flags: flags, type: ReplyType.offsetHole, length: 12)
        header.u64(offset)
        header.u32(UInt32(piece.range.count))
        headers.bytes(header.bytes)
        layout.append((start..<headers.bytes.count, nil))
      } else {
        var header = chunkHeader(request, flags: flags, type: ReplyType.offsetData, length: 8 + piece.range.count)
        header.u64(offset)
        headers.bytes(header.bytes)
        layout.append((start..<headers.bytes.count, piece.range))
      }
    }
    headers.bytes.withUnsafeBytes { all in
      var parts: [UnsafeRawBufferPointer] = []
      parts.reserveCapacity(layout.count * 2)
      for entry in layout {
        parts.append(UnsafeRawBufferPointer(rebasing: all[entry.headerRange]))
        if let range = entry.data { parts.append(UnsafeRawBufferPointer(rebasing: data[range])) }
      }
      connection.send(parts)
    }
  }
}
