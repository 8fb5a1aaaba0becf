import Foundation

/// Serves one export over NBD on a UNIX socket: a thread per connection for the handshake and for
/// reading requests, up to 16 worker threads per connection for executing them.
public final class NBDServer: @unchecked Sendable {
  public let export: Export
  public var socketPath: String { listener.path }
  /// Connections beyond this many are closed at once, which bounds threads and buffers.
  public let maximumConnections: Int

  private let listener: UnixListener
  private let lock = NSLock()
  private var connections: [ObjectIdentifier: SocketConnection] = [:]
  private var isStopping = false
  private let running = DispatchGroup()
  private let pool = BufferPool()
  /// Buffers of all connections together stay under 256 MiB (a single request may still take 32).
  private let serverLimit = InflightLimit(requests: Int.max, bytes: 256 << 20)
  /// A client must finish the handshake in this time; an idle client in transmission may stay.
  public let handshakeTimeout: TimeInterval

  /// Binds the socket (a stale socket file is replaced; a live server or another file is refused).
  public init(export: Export, socketPath: String, maximumConnections: Int = 32, handshakeTimeout: TimeInterval = 30)
    throws
  {
    self.export = export
    self.maximumConnections = maximumConnections
    self.handshakeTimeout = handshakeTimeout
    listener = try UnixListener(path: socketPath)
  }

  /// Starts accepting clients on a thread of its own and returns.
  public func start() {
    running.enter()
    let thread = Thread { [self] in
      defer { running.leave() }
      while let descriptor = listener.accept() {
        let connection = SocketConnection(descriptor: descriptor)
        let admitted = lock.withLock { () -> Bool in
          guard !isStopping, connections.count < maximumConnections else { return false }
          connections[ObjectIdentifier(connection)] = connection
          return true
        }
        guard admitted else {
          connection.close()
          continue
        }
        running.enter()
        let worker = Thread { [self] in
          serve(connection)
          lock.withLock { _ = connections.removeValue(forKey: ObjectIdentifier(connection)) }
          connection.close()
          running.leave()
        }
        worker.name = "nbd connection"
        worker.start()
      }
    }
    thread.name = "nbd accept"
    thread.start()
  }

  private func serve(_ connection: SocketConnection) {
    connection.setReceiveTimeout(handshakeTimeout)
    guard let session = Handshake(connection: connection, export: export).run() else { return }
    connection.setReceiveTimeout(0)
    Transmission(connection: connection, export: export, session: session, pool: pool, serverLimit: serverLimit).run()
  }

  /// The number of clients connected now.
  public var connectionCount: Int { lock.withLock { connections.count } }

  /// Stops accepting, ends every connection once the requests it has under way are answered, and
  /// returns when all are gone. The export is not flushed here (see `Export.flush`).
  public func stop() {
    let open = lock.withLock { () -> [SocketConnection] in
      isStopping = true
      return Array(connections.values)
    }
    listener.close()
    open.forEach { $0.shutdown() }
    running.wait()
  }
}
