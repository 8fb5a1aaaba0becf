import Foundation

/// Where the cluster's PostgreSQL database is: `postgresql://user[:password]@host[:port]/db` over
/// TCP, or `postgresql:///db?host=/socket/dir` (or `postgresql://user@/db?host=/dir`) over the UNIX
/// socket `.s.PGSQL.PORT` in that folder, as libpq spells them. Without a user, the user is the
/// name of the account running vmlab, as libpq does (peer authentication on a socket). Over TCP,
/// `sslmode` and `sslrootcert` say how TLS is used, and `sslcert` and `sslkey` name the client
/// certificate and its key, as libpq takes them (`TLSMode`, `ClientCertificate`).
public struct ClusterURL: Sendable, Equatable, CustomStringConvertible {
  public enum Endpoint: Sendable, Equatable {
    case tcp(host: String, port: Int)
    case socket(folder: String, port: Int)

    /// The socket file's path, for a socket endpoint.
    public var socketPath: String? {
      if case .socket(let folder, let port) = self { return "\(folder)/.s.PGSQL.\(port)" }
      return nil
    }
  }

  public var endpoint: Endpoint
  public var user: String
  public var password: String?
  public var database: String
  /// How a TCP connection uses TLS (`sslmode=`); a UNIX socket never does, whatever this says.
  public var tls: TLSMode
  /// `sslrootcert=`: the file of CA certificates that `verify-ca` and `verify-full` trust, or
  /// `system` for the system's trust store; nil for libpq's default, `~/.postgresql/root.crt`.
  public var rootCertificate: String?
  /// `sslcert=`: the client certificate (PEM, optionally followed by its intermediate CAs) shown
  /// to a server that asks for one (pg_hba.conf's `cert` method); nil for libpq's default,
  /// `~/.postgresql/postgresql.crt` when that file exists.
  public var clientCertificate: String?
  /// `sslkey=`: the client certificate's private key (PEM, unencrypted, mode 0600 or less); nil
  /// for libpq's default, `~/.postgresql/postgresql.key`.
  public var clientKey: String?

  public static let defaultPort = 5432

  /// Parses `text`; a wrong URL is a `.usage` error that says what is wrong and shows the forms.
  public init(_ text: String) throws {
    func wrong(_ what: String) -> ClusterError {
      ClusterError(
        .usage,
        "--cluster URL '\(Self.redacted(text))': \(what); use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE or postgresql:///DATABASE?host=/SOCKET/FOLDER"
      )
    }
    guard let schemeEnd = text.range(of: "://") else { throw wrong("it has no scheme (postgresql://)") }
    let scheme = text[..<schemeEnd.lowerBound].lowercased()
    guard scheme == "postgresql" || scheme == "postgres" else {
      throw wrong("the scheme is '\(scheme)', not postgresql")
    }
    guard let components = URLComponents(string: text) else { throw wrong("it is not a valid URL") }
    if let fragment = components.fragment, !fragment.isEmpty { throw wrong("it has a fragment (#…)") }

    var socketFolder: String?
    var port: Int?
    var user = ""
    var password: String?
    var tls = TLSMode.defaultMode
    var rootCertificate: String?
    var clientCertificate: String?
    var clientKey: String?
    for item in components.queryItems ?? [] {
      switch item.name {
      case "host":
        guard let value = item.value, value.hasPrefix("/") else {
          throw wrong("host= must be an absolute socket folder, not '\(item.value ?? "")'")
        }
        socketFolder = value
      case "port":
        guard let value = item.value, let number = Int(value), (1...65535).contains(number) else {
          throw wrong("port= must be a number from 1 to 65535, not '\(item.value ?? "")'")
        }
        port = number
      case "user":
        guard let value = item.value, !value.isEmpty else { throw wrong("user= is empty") }
        user = value
      case "password":
        password = item.value
      case "sslmode":
        guard let value = item.value, let mode = TLSMode(rawValue: value) else {
          throw wrong(
            "sslmode=\(item.value ?? "") is not a TLS mode (use \(TLSMode.allCases.map(\.rawValue).joined(separator: ", ")))"
          )
        }
        tls = mode
      case "sslrootcert":
        guard let value = item.value, !value.isEmpty else { throw wrong("sslrootcert= names no file") }
        rootCertificate = value
      case "sslcert":
        guard let value = item.value, !value.isEmpty else { throw wrong("sslcert= names no file") }
        clientCertificate = value
      case "sslkey":
        guard let value = item.value, !value.isEmpty else { throw wrong("sslkey= names no file") }
        clientKey = value
      default:
        throw wrong(
          "unknown parameter '\(item.name)' (known: host, port, user, password, sslmode, sslrootcert, sslcert, sslkey)")
      }
    }
    if let urlPort = components.port {
      guard (1...65535).contains(urlPort) else { throw wrong("port \(urlPort) is not from 1 to 65535") }
      port = urlPort
    } else if let authority = text[schemeEnd.upperBound...].split(separator: "/", maxSplits: 1).first,
      authority.hasSuffix(":")
    {
      throw wrong("the port after ':' is missing")
    }
    if let name = components.percentEncodedUser {
      guard let decoded = name.removingPercentEncoding, !decoded.isEmpty else { throw wrong("the user name is empty") }
      user = decoded
    }
    if let secret = components.percentEncodedPassword { password = secret.removingPercentEncoding }
    var path = components.path
    if path.hasPrefix("/") { path.removeFirst() }
    guard !path.isEmpty else { throw wrong("it names no database (…/DATABASE)") }
    guard !path.contains("/") else { throw wrong("the database name '\(path)' holds a '/'") }
    let database = path

    let host = components.host ?? ""
    let endpoint: Endpoint
    if let folder = socketFolder {
      guard host.isEmpty else { throw wrong("it names both a host '\(host)' and a socket folder") }
      endpoint = .socket(folder: folder, port: port ?? Self.defaultPort)
    } else if host.isEmpty {
      throw wrong("it names no host; for a UNIX socket give its folder as ?host=/SOCKET/FOLDER")
    } else if host.hasPrefix("/") || host.hasPrefix("%2F") || host.hasPrefix("%2f") {
      endpoint = .socket(folder: host.removingPercentEncoding ?? host, port: port ?? Self.defaultPort)
    } else {
      endpoint = .tcp(
        host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port ?? Self.defaultPort)
    }
    self.endpoint = endpoint
    self.user = user.isEmpty ? Self.accountName() : user
    self.password = password
    self.database = database
    self.tls = tls
    self.rootCertificate = rootCertificate
    self.clientCertificate = clientCertificate
    self.clientKey = clientKey
  }

  /// The URL as shown to people: any password replaced by `***`.
  public var description: String {
    let who = user + (password == nil ? "" : ":***")
    switch endpoint {
    case .tcp(let host, let port):
      let shownHost = host.contains(":") ? "[\(host)]" : host
      // The TLS parameters are shown when they differ from the default: an error about a
      // certificate or a refused connection makes sense only with them.
      var parameters: [String] = []
      if tls != .defaultMode { parameters.append("sslmode=\(tls.rawValue)") }
      if let rootCertificate { parameters.append("sslrootcert=\(rootCertificate)") }
      if let clientCertificate { parameters.append("sslcert=\(clientCertificate)") }
      if let clientKey { parameters.append("sslkey=\(clientKey)") }
      return "postgresql://\(who)@\(shownHost):\(port)/\(database)"
        + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
    case .socket(let folder, let port):
      return "postgresql://\(who)@/\(database)?host=\(folder)" + (port == Self.defaultPort ? "" : "&port=\(port)")
    }
  }

  /// `text` with the password of its user part (if any) hidden, for error messages.
  static func redacted(_ text: String) -> String {
    guard let schemeEnd = text.range(of: "://"),
      let at = text[schemeEnd.upperBound...].firstIndex(of: "@"),
      let colon = text[schemeEnd.upperBound..<at].firstIndex(of: ":")
    else { return text }
    return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
  }

  /// The account running this process, libpq's default user.
  public static func accountName() -> String {
    if let name = ProcessInfo.processInfo.environment["PGUSER"], !name.isEmpty { return name }
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return ProcessInfo.processInfo.userName
  }
}
