import Foundation
import XCTest

/// A network namespace of a test's own, joined to the test's namespace by a veth pair on a /30 of
/// 10.213.0.0/16: the host side is `hostAddress`, the namespace side `address`. A program run
/// through `launcher` lives in the namespace and reaches the test only through that link, which
/// `cut()` takes down (packets are lost, nothing is refused: a partition) and `restore()` brings
/// back. `remove()` deletes the namespace and its link; call it in teardown.
public final class NetworkNamespace {
  public let name: String
  public let hostSide: String
  public let hostAddress: String
  public let address: String
  private var removed = false

  static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(
    where: FileManager.default.isExecutableFile)

  /// Skips the test where namespaces cannot be made: not root, or no `ip` (Debian's iproute2).
  public static func checkAvailable() throws {
    guard getuid() == 0 else {
      throw XCTSkip("network namespaces need root (CI runs the tests as root); this run is not")
    }
    guard ip != nil else { throw XCTSkip("ip (Debian's iproute2) is not installed: run Scripts/bootstrap") }
  }

  /// `tag` makes the names unique to this test run (a few letters or digits); `subnet` (0-255)
  /// and `index` (0-63) choose the /30: 10.213.subnet.(4·index).
  public init(tag: String, index: Int, subnet: Int) throws {
    try Self.checkAvailable()
    name = "vmlab-\(tag)-\(index)"
    hostSide = "vl\(tag)\(index)"
    let namespaceSide = "vl\(tag)\(index)n"
    hostAddress = "10.213.\(subnet).\(4 * index + 1)"
    address = "10.213.\(subnet).\(4 * index + 2)"
    do {
      try Self.run(["netns", "add", name])
      try Self.run(["link", "add", hostSide, "type", "veth", "peer", "name", namespaceSide])
      try Self.run(["link", "set", namespaceSide, "netns", name])
      try Self.run(["addr", "add", "\(hostAddress)/30", "dev", hostSide])
      try Self.run(["link", "set", hostSide, "up"])
      try Self.run(["-n", name, "addr", "add", "\(address)/30", "dev", namespaceSide])
      try Self.run(["-n", name, "link", "set", namespaceSide, "up"])
      try Self.run(["-n", name, "link", "set", "lo", "up"])
    } catch {
      remove()
      throw error
    }
  }

  /// Runs a program inside the namespace: `ip netns exec NAME` execs it in place.
  public var launcher: [String] { [Self.ip!, "netns", "exec", name] }

  public func cut() throws { try Self.run(["link", "set", hostSide, "down"]) }
  public func restore() throws { try Self.run(["link", "set", hostSide, "up"]) }

  /// Deletes the namespace (its end of the pair with it, and so the pair) and the host side if it
  /// is still there. Safe to call twice.
  public func remove() {
    guard !removed else { return }
    removed = true
    _ = try? Self.run(["netns", "delete", name])
    _ = try? Self.run(["link", "delete", hostSide])
  }

  deinit { remove() }

  @discardableResult
  static func run(_ arguments: [String]) throws -> String {
    let result = try runProgram(ip!, arguments)
    guard result.status == 0 else {
      throw NSError(
        domain: "NetworkNamespace", code: Int(result.status),
        userInfo: [NSLocalizedDescriptionKey: "ip \(arguments.joined(separator: " ")) failed: \(result.error)"])
    }
    return result.output
  }
}
