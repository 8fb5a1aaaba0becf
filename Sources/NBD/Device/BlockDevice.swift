/// What the server serves: a range of bytes that can be read, written, flushed, zeroed, trimmed and
/// asked which parts hold data. The server knows nothing else about it (a VHD chain is one).
///
/// The server calls a device from several threads at once (up to 16 requests per connection, and
/// several connections); the device serialises internally whatever must not overlap.
public protocol BlockDevice: AnyObject, Sendable {
  /// The size in bytes; it does not change while the device is served.
  var size: UInt64 { get }
  var isReadOnly: Bool { get }
  /// Whether `trim` can give space back (the server advertises TRIM only then).
  var canTrim: Bool { get }

  /// Fills `buffer` with the bytes at `offset` and returns the layout of that range: which runs are
  /// holes (they read as zeros; the buffer holds zeros there too) and which hold data.
  func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> [Extent]
  /// Writes all of `buffer` at `offset`; with `durable`, returns only once it is on stable storage.
  func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws
  /// Makes the range read as zeros. With `fast`, fails with `.notFast` instead of doing work as slow as
  /// writing zeros (nothing is changed then).
  func writeZeroes(at offset: UInt64, count: UInt64, fast: Bool, durable: Bool) throws
  /// Says the range is no longer needed; its contents are undefined afterwards.
  func trim(at offset: UInt64, count: UInt64, durable: Bool) throws
  /// Puts every completed write on stable storage.
  func flush() throws
  /// The allocation status of the range from `offset`, at most `limit` extents (which may cover less
  /// than `count` bytes, never more).
  func allocation(at offset: UInt64, count: UInt64, limit: Int) throws -> [Extent]
}

/// A run of a device's bytes and whether anything stores them.
public struct Extent: Equatable, Sendable {
  public var length: UInt64
  /// Nothing stores these bytes (they read as zeros).
  public var isHole: Bool

  public init(length: UInt64, isHole: Bool) {
    self.length = length
    self.isHole = isHole
  }
}

/// Why a device refused or failed a request; the server turns it into an NBD error number and the
/// message into the error chunk a client can show.
public struct BlockDeviceError: Error, Equatable, Sendable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    case invalidArgument
    case readOnly
    case noSpace
    case notFast
    case io
  }

  public var kind: Kind
  public var message: String

  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }
}
