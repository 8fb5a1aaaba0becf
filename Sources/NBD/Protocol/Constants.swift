/// Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), by the names the document uses.
enum NBDMagic {
  /// "NBDMAGIC", the first eight bytes a server sends.
  static let greeting: UInt64 = 0x4e42_444d_4147_4943
  /// "IHAVEOPT": after the greeting, and in front of every option.
  static let option: UInt64 = 0x4948_4156_454f_5054
  static let optionReply: UInt64 = 0x0003_e889_0455_65a9
  static let request: UInt32 = 0x2560_9513
  static let simpleReply: UInt32 = 0x6744_6698
  static let structuredReply: UInt32 = 0x668e_33ef
}

enum HandshakeFlag {
  static let fixedNewstyle: UInt16 = 1 << 0
  static let noZeroes: UInt16 = 1 << 1
}

enum ClientFlag {
  static let fixedNewstyle: UInt32 = 1 << 0
  static let noZeroes: UInt32 = 1 << 1
  static let known: UInt32 = fixedNewstyle | noZeroes
}

enum TransmissionFlag {
  static let hasFlags: UInt16 = 1 << 0
  static let readOnly: UInt16 = 1 << 1
  static let sendFlush: UInt16 = 1 << 2
  static let sendFUA: UInt16 = 1 << 3
  static let sendTrim: UInt16 = 1 << 5
  static let sendWriteZeroes: UInt16 = 1 << 6
  static let sendDF: UInt16 = 1 << 7
  static let canMultiConn: UInt16 = 1 << 8
  static let sendFastZero: UInt16 = 1 << 11
}

enum OptionType {
  static let exportName: UInt32 = 1
  static let abort: UInt32 = 2
  static let list: UInt32 = 3
  static let startTLS: UInt32 = 5
  static let info: UInt32 = 6
  static let go: UInt32 = 7
  static let structuredReply: UInt32 = 8
  static let listMetaContext: UInt32 = 9
  static let setMetaContext: UInt32 = 10
}

enum OptionReply {
  static let ack: UInt32 = 1
  static let server: UInt32 = 2
  static let info: UInt32 = 3
  static let metaContext: UInt32 = 4
  static let errorUnsupported: UInt32 = 0x8000_0001
  static let errorInvalid: UInt32 = 0x8000_0003
  static let errorUnknown: UInt32 = 0x8000_0006
  static let errorShutdown: UInt32 = 0x8000_0007
  static let errorTooBig: UInt32 = 0x8000_0009
}

enum InfoType {
  static let export: UInt16 = 0
  static let name: UInt16 = 1
  static let description: UInt16 = 2
  static let blockSize: UInt16 = 3
}

enum Command {
  static let read: UInt16 = 0
  static let write: UInt16 = 1
  static let disconnect: UInt16 = 2
  static let flush: UInt16 = 3
  static let trim: UInt16 = 4
  static let writeZeroes: UInt16 = 6
  static let blockStatus: UInt16 = 7
}

enum CommandFlag {
  static let fua: UInt16 = 1 << 0
  static let noHole: UInt16 = 1 << 1
  static let dontFragment: UInt16 = 1 << 2
  static let requestOne: UInt16 = 1 << 3
  static let fastZero: UInt16 = 1 << 4
}

enum ReplyType {
  static let none: UInt16 = 0
  static let offsetData: UInt16 = 1
  static let offsetHole: UInt16 = 2
  static let blockStatus: UInt16 = 5
  static let error: UInt16 = 0x8001
}

enum ReplyFlag {
  static let done: UInt16 = 1 << 0
}

/// Error numbers on the wire (fixed by the protocol, not the host's errno values).
enum WireError {
  static let notPermitted: UInt32 = 1
  static let io: UInt32 = 5
  static let invalid: UInt32 = 22
  static let noSpace: UInt32 = 28
  static let overflow: UInt32 = 75
  static let notSupported: UInt32 = 95
  static let shutdown: UInt32 = 108
}

/// base:allocation status bits.
enum AllocationState {
  static let hole: UInt32 = 1 << 0
  static let zero: UInt32 = 1 << 1
}

/// The one metadata context this server offers.
enum MetaContext {
  static let allocation = "base:allocation"
  static let allocationID: UInt32 = 1
}
