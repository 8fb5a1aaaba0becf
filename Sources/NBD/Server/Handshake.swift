/// What a client negotiated before transmission.
struct Session: Sendable {
  var structuredReplies = false
  /// base:allocation was selected (NBD_OPT_SET_META_CONTEXT), so BLOCK_STATUS may be used.
  var allocationContext = false
}

/// The block sizes the server advertises: 512-byte sectors at least, 4 KiB preferred, 32 MiB at most
/// per request (also the largest payload it accepts).
enum BlockSizes {
  static let minimum: UInt32 = 512
  static let preferred: UInt32 = 4096
  static let maximum: UInt32 = 32 << 20
}

/// The fixed newstyle handshake: greeting, client flags, then options until the client chooses the
/// export (GO or EXPORT_NAME) or leaves. Anything that breaks the protocol's framing ends the
/// connection; a well-framed option the server does not offer gets an error reply and haggling goes on.
struct Handshake {
  let connection: SocketConnection
  let export: Export

  /// The longest option data read; longer ones end the connection (nothing valid comes close).
  static let maximumOptionLength: UInt32 = 64 << 10

  /// The negotiated session, or nil when the connection is to be closed.
  func run() -> Session? {
    var greeting = ByteWriter()
    greeting.u64(NBDMagic.greeting)
    greeting.u64(NBDMagic.option)
    greeting.u16(HandshakeFlag.fixedNewstyle | HandshakeFlag.noZeroes)
    guard connection.send(greeting.bytes), let flagBytes = connection.receive(count: 4) else { return nil }
    var flagReader = ByteReader(flagBytes)
    guard let clientFlags = try? flagReader.u32(), clientFlags & ~ClientFlag.known == 0 else { return nil }
    let noZeroes = clientFlags & ClientFlag.noZeroes != 0
    var session = Session()

    while true {
      guard let header = connection.receive(count: 16) else { return nil }
      var reader = ByteReader(header)
      guard let magic = try? reader.u64(), magic == NBDMagic.option,
        let option = try? reader.u32(), let length = try? reader.u32(),
        length <= Handshake.maximumOptionLength,
        let data = connection.receive(count: Int(length))
      else { return nil }

      switch option {
      case OptionType.exportName:
        // No way to answer "no" here but to hang up, as the protocol says.
        guard export.accepts(name: String(decoding: data, as: UTF8.self)) else { return nil }
        var reply = ByteWriter()
        reply.u64(export.size)
        reply.u16(transmissionFlags(session))
        if !noZeroes { reply.bytes([UInt8](repeating: 0, count: 124)) }
        return connection.send(reply.bytes) ? session : nil
      case OptionType.abort:
        reply(option, OptionReply.ack)
        return nil
      case OptionType.list:
        guard data.isEmpty else {
          reply(option, OptionReply.errorInvalid, message: "NBD_OPT_LIST takes no data")
          continue
        }
        var server = ByteWriter()
        server.u32(UInt32(export.name.utf8.count))
        server.string(export.name)
        reply(option, OptionReply.server, server.bytes)
        reply(option, OptionReply.ack)
      case OptionType.info, OptionType.go:
        guard answerInfo(option, data, session) else { continue }
        if option == OptionType.go { return session }
      case OptionType.structuredReply:
        guard data.isEmpty else {
          reply(option, OptionReply.errorInvalid, message: "NBD_OPT_STRUCTURED_REPLY takes no data")
          continue
        }
        session.structuredReplies = true
        reply(option, OptionReply.ack)
      case OptionType.listMetaContext, OptionType.setMetaContext:
        answerMetaContext(option, data, &session)
      default:
        reply(option, OptionReply.errorUnsupported, message: "option \(option) is not supported by this server")
      }
    }
  }

  func transmissionFlags(_ session: Session) -> UInt16 {
    var flags = TransmissionFlag.hasFlags | TransmissionFlag.sendFlush | TransmissionFlag.sendFUA
    // Every connection shares the one device and flush is an fsync of its files, so a flush on one
    // connection covers writes completed on any other: what CAN_MULTI_CONN promises.
    flags |= TransmissionFlag.canMultiConn
    if export.isReadOnly {
      flags |= TransmissionFlag.readOnly
    } else {
      flags |= TransmissionFlag.sendWriteZeroes | TransmissionFlag.sendFastZero
      if export.canTrim { flags |= TransmissionFlag.sendTrim }
    }
    if session.structuredReplies { flags |= TransmissionFlag.sendDF }
    return flags
  }

  /// NBD_OPT_INFO and NBD_OPT_GO: the export's size, flags, block sizes (and name and description
  /// when asked). True when the export was found and described.
  private func answerInfo(_ option: UInt32, _ data: [UInt8], _ session: Session) -> Bool {
    var reader = ByteReader(data)
    guard let nameLength = try? reader.u32(), nameLength <= 4096, let name = try? reader.string(Int(nameLength)),
      let count = try? reader.u16(), reader.remaining == Int(count) * 2
    else {
      reply(option, OptionReply.errorInvalid, message: "malformed NBD_OPT_INFO/NBD_OPT_GO data")
      return false
    }
    var requested: Set<UInt16> = []
    for _ in 0..<count { if let type = try? reader.u16() { requested.insert(type) } }
    guard export.accepts(name: name) else {
      reply(option, OptionReply.errorUnknown, message: "no export named '\(name)'; this server offers '\(export.name)'")
      return false
    }
    var info = ByteWriter()
    info.u16(InfoType.export)
    info.u64(export.size)
    info.u16(transmissionFlags(session))
    reply(option, OptionReply.info, info.bytes)
    var sizes = ByteWriter()
    sizes.u16(InfoType.blockSize)
    sizes.u32(BlockSizes.minimum)
    sizes.u32(BlockSizes.preferred)
    sizes.u32(BlockSizes.maximum)
    reply(option, OptionReply.info, sizes.bytes)
    if requested.contains(InfoType.name) {
      var named = ByteWriter()
      named.u16(InfoType.name)
      named.string(export.name)
      reply(option, OptionReply.info, named.bytes)
    }
    if requested.contains(InfoType.description) && !export.details.isEmpty {
      var described = ByteWriter()
      described.u16(InfoType.description)
      described.bytes(Array(export.details.utf8.prefix(4096)))
      reply(option, OptionReply.info, described.bytes)
    }
    reply(option, OptionReply.ack)
    return true
  }

  /// NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: only base:allocation exists.
  private func answerMetaContext(_ option: UInt32, _ data: [UInt8], _ session: inout Session) {
    guard session.structuredReplies else {
      reply(option, OptionReply.errorInvalid, message: "negotiate NBD_OPT_STRUCTURED_REPLY before metadata contexts")
      return
    }
    var reader = ByteReader(data)
    var queries: [String] = []
    do {
      let name = try reader.string(Int(try reader.u32()))
      let count = try reader.u32()
      for _ in 0..<count { queries.append(try reader.string(Int(try reader.u32()))) }
      guard reader.remaining == 0 else { throw MalformedMessage() }
      guard export.accepts(name: name) else {
        reply(option, OptionReply.errorUnknown, message: "no export named '\(name)'")
        return
      }
    } catch {
      reply(option, OptionReply.errorInvalid, message: "malformed metadata context query")
      return
    }
    let matches: Bool
    if option == OptionType.setMetaContext {
      matches = queries.contains(MetaContext.allocation)
      session.allocationContext = matches
    } else {
      matches = queries.isEmpty || queries.contains { $0 == "base:" || $0 == MetaContext.allocation }
    }
    if matches {
      var context = ByteWriter()
      context.u32(option == OptionType.setMetaContext ? MetaContext.allocationID : 0)
      context.string(MetaContext.allocation)
      reply(option, OptionReply.metaContext, context.bytes)
    }
    reply(option, OptionReply.ack)
  }

  private func reply(_ option: UInt32, _ type: UInt32, _ data: [UInt8] = [], message: String? = nil) {
    let payload = message.map { Array($0.utf8) } ?? data
    var reply = ByteWriter(capacity: 20 + payload.count)
    reply.u64(NBDMagic.optionReply)
    reply.u32(option)
    reply.u32(type)
    reply.u32(UInt32(payload.count))
    reply.bytes(payload)
    connection.send(reply.bytes)
  }
}
