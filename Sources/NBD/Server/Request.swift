/// One transmission request as it came off the wire (28 bytes, then a WRITE's payload).
struct Request: Sendable {
  static let headerSize = 28

  var flags: UInt16
  var command: UInt16
  var cookie: UInt64
  var offset: UInt64
  var length: UInt32

  /// Decodes a header; nil when the magic is wrong (the stream cannot be trusted after that).
  init?(header: [UInt8]) {
    var reader = ByteReader(header)
    guard let magic = try? reader.u32(), magic == NBDMagic.request,
      let flags = try? reader.u16(), let command = try? reader.u16(), let cookie = try? reader.u64(),
      let offset = try? reader.u64(), let length = try? reader.u32()
    else { return nil }
    self.flags = flags
    self.command = command
    self.cookie = cookie
    self.offset = offset
    self.length = length
  }

  var fua: Bool { flags & CommandFlag.fua != 0 }

  /// Whether the range lies inside a device of `size` bytes.
  func fits(in size: UInt64) -> Bool {
    offset <= size && UInt64(length) <= size - offset
  }

  /// The command flags this server accepts with each command; any other set flag is refused.
  func allowedFlags(_ session: Session) -> UInt16 {
    switch command {
    case Command.read: return CommandFlag.fua | (session.structuredReplies ? CommandFlag.dontFragment : 0)
    case Command.writeZeroes: return CommandFlag.fua | CommandFlag.noHole | CommandFlag.fastZero
    case Command.blockStatus: return CommandFlag.fua | CommandFlag.requestOne
    default: return CommandFlag.fua
    }
  }
}

/// A refusal or failure of one request: the error number on the wire and a message for the client.
struct RequestFailure: Error {
  var code: UInt32
  var message: String

  init(_ code: UInt32, _ message: String) {
    self.code = code
    self.message = message
  }

  init(_ error: Error) {
    guard let error = error as? BlockDeviceError else {
      self.init(WireError.io, String(describing: error))
      return
    }
    switch error.kind {
    case .invalidArgument: self.init(WireError.invalid, error.message)
    case .readOnly: self.init(WireError.notPermitted, error.message)
    case .noSpace: self.init(WireError.noSpace, error.message)
    case .notFast: self.init(WireError.notSupported, error.message)
    case .io: self.init(WireError.io, error.message)
    }
  }
}
