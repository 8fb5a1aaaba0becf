import Foundation
import NBD
import VHD

/// A VHD chain served over NBD on a UNIX socket: the device, its export and the server, and the
/// switch to a new leaf that an online checkpoint needs (the VM keeps its connection; requests from
/// the switch on read and write the new chain).
public final class ServedChain: @unchecked Sendable {
  public let export: Export
  public let server: NBDServer
  private let lock = NSLock()
  private var device: ChainBlockDevice
  private let options: OpenOptions

  public init(
    path: String, socketPath: String, readOnly: Bool = false, name: String? = nil, options: OpenOptions = OpenOptions()
  ) throws {
    let device = try ChainBlockDevice(path: path, readOnly: readOnly, options: options)
    self.device = device
    self.options = options
    let exportName = name ?? URL(fileURLWithPath: device.leafPath).deletingPathExtension().lastPathComponent
    export = Export(name: exportName, details: ServedChain.details(device), device: device)
    do {
      server = try NBDServer(export: export, socketPath: socketPath)
    } catch {
      device.close()
      throw error
    }
  }

  private static func details(_ device: ChainBlockDevice) -> String {
    "vmlab VHD chain of \(device.depth) disk(s): \(device.leafPath)"
  }

  public var leafPath: String { lock.withLock { device.leafPath } }
  public var depth: Int { lock.withLock { device.depth } }
  public var size: UInt64 { export.size }

  public func start() { server.start() }

  /// Stops the server (requests under way are answered first), flushes the leaf and closes the chain.
  public func stop() throws {
    server.stop()
    try export.flush()
    lock.withLock { device.close() }
  }

  /// Serves the chain whose leaf is `path` from the next request on (see `switchLeaves`).
  public func switchLeaf(to path: String) throws {
    try ServedChain.switchLeaves([(self, path)])
  }

  /// Switches several served chains together (the disks of one VM): pauses every export between two
  /// requests, flushes each leaf, opens each new chain (typically a new differencing disk over the
  /// old leaf, created while paused or before), puts it in place and resumes. A new chain must be
  /// the size clients were told. If any new chain fails to open, none is switched.
  public static func switchLeaves(_ switches: [(served: ServedChain, path: String)]) throws {
    try Export.switchTogether(switches.map(\.served.export)) {
      var opened: [ChainBlockDevice] = []
      do {
        for (served, path) in switches {
          let device = try ChainBlockDevice(
            path: path, readOnly: served.export.isReadOnly, options: served.options)
          opened.append(device)
          guard device.size == served.size else {
            throw NBDServerError(
              "\(path) is \(device.size) bytes but the export \(served.export.name) serves \(served.size); a new leaf must keep the size"
            )
          }
        }
      } catch {
        opened.forEach { $0.close() }
        throw error
      }
      for ((served, _), device) in zip(switches, opened) {
        try served.export.replaceDevice(with: device)
        let old = served.lock.withLock { () -> ChainBlockDevice in
          defer { served.device = device }
          return served.device
        }
        old.close()
      }
    }
  }
}
