import ArgumentParser
import Cluster
import Foundation

/// `--cluster URL`: the PostgreSQL database of a cluster of hosts. Given before the command
/// (`vmlab --cluster URL host list`, taken off by `LeadingOptions`) or after it; else
/// `$VMLAB_CLUSTER`. Only the commands that work across hosts (`ClusterAware`) read it; without it
/// vmlab works on one library and never touches PostgreSQL.
struct ClusterOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "The cluster database: postgresql://USER@HOST/DB or postgresql:///DB?host=/SOCKET/DIR (default: $VMLAB_CLUSTER).",
      valueName: "url"))
  var cluster: String?

  /// The URL text from the option, before the command, or the environment; nil in one-library mode.
  var text: String? {
    cluster ?? LeadingOptions.current.cluster ?? Self.fromEnvironment
  }

  /// `$VMLAB_CLUSTER`, unless unset or empty.
  static var fromEnvironment: String? {
    ProcessInfo.processInfo.environment["VMLAB_CLUSTER"].flatMap { $0.isEmpty ? nil : $0 }
  }

  var isSet: Bool { text != nil }

  /// The parsed URL; a wrong one is a usage error that says what is wrong.
  func url() throws -> ClusterURL {
    guard let text else {
      throw ValidationError("this needs a cluster: give --cluster URL (or set VMLAB_CLUSTER)")
    }
    do {
      return try ClusterURL(text)
    } catch let error as ClusterError {
      throw ValidationError(error.message)
    }
  }

  /// Connects (bringing the schema forward) and runs `body` against the cluster database.
  func withDatabase<T: Sendable>(_ body: @escaping @Sendable (ClusterDatabase) async throws -> T) throws -> T {
    let url = try url()
    return try runBlocking { try await ClusterDatabase.using(url, body) }
  }
}

/// A command that works across hosts: `--cluster` before it is meant for it. Any other command
/// given `--cluster` refuses, rather than quietly working on the local library.
protocol ClusterAware {}

/// Bytes as people read them: `5.1 GiB`.
func binarySize(_ bytes: Int64) -> String {
  let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
  var value = Double(bytes)
  var unit = 0
  while value >= 1024 && unit < units.count - 1 {
    value /= 1024
    unit += 1
  }
  return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
