import Foundation
import PostgresNIO

/// The certificate and private key a TCP connection shows a server that asks for one (pg_hba.conf's
/// `cert` method: the certificate's common name is the user name), read as libpq reads them: the
/// URL's `sslcert` and `sslkey`, or else `~/.postgresql/postgresql.crt` and `.key` when that
/// certificate exists. Each file problem is a usage error naming the file and the fix, found
/// before anything is sent, so a wrong set-up never reaches the server.
struct ClientCertificate {
  let certificateFile: String
  let keyFile: String
  let chain: [NIOSSLCertificate]
  let key: NIOSSLPrivateKey

  /// libpq's default client certificate and key, used when the URL names none.
  static var defaultCertificateFile: String { home + "/.postgresql/postgresql.crt" }
  static var defaultKeyFile: String { home + "/.postgresql/postgresql.key" }
  private static var home: String { ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory() }

  /// The file of the client certificate `url` shows, if any (for messages about it).
  static func file(for url: ClusterURL) -> String? {
    url.clientCertificate
      ?? (FileManager.default.fileExists(atPath: defaultCertificateFile) ? defaultCertificateFile : nil)
  }

  /// The client certificate `url` shows, or nil when it shows none (no `sslcert`, and no default
  /// certificate file: a server that asks for one then says so, see `ClusterDatabase.tlsReason`).
  static func load(for url: ClusterURL) throws -> ClientCertificate? {
    guard let certificateFile = file(for: url) else {
      if let key = url.clientKey {
        throw ClusterError(
          .usage,
          "sslkey '\(key)' is given without a client certificate: add sslcert=FILE (the certificate that key belongs to) to the URL"
        )
      }
      return nil
    }
    let chain = try certificates(in: certificateFile)
    let keyFile = url.clientKey ?? defaultKeyFile
    if url.clientKey == nil && !FileManager.default.fileExists(atPath: keyFile) {
      throw ClusterError(
        .usage,
        "sslcert '\(certificateFile)' has no private key: add sslkey=FILE (the key the certificate was made for) to the URL, or put it in \(keyFile)"
      )
    }
    let key = try privateKey(in: keyFile)
    return ClientCertificate(certificateFile: certificateFile, keyFile: keyFile, chain: chain, key: key)
  }

  private static func certificates(in file: String) throws -> [NIOSSLCertificate] {
    try checkReadable(file, as: "sslcert", what: "the client certificate the database server should accept")
    return try pemCertificates(
      in: file,
      orSay:
        "sslcert '\(file)' holds no PEM certificate vmlab can read; give the client certificate in PEM form (-----BEGIN CERTIFICATE-----)"
    )
  }

  /// The key, once its permissions are as private as libpq demands: a key others can read is
  /// refused rather than used, so that a careless copy is noticed where it can still be fixed.
  private static func privateKey(in file: String) throws -> NIOSSLPrivateKey {
    try checkReadable(file, as: "sslkey", what: "the private key of the client certificate")
    var status = stat()
    guard stat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      throw ClusterError(.usage, "sslkey '\(file)' is not a regular file; give the private key's file")
    }
    let mode = status.st_mode & 0o777
    let octal = "0" + String(mode, radix: 8)
    // libpq's rule: a key of the user running it has no group or world access; a key owned by
    // root (a system-wide one, shared with a group) may be read by its group.
    if status.st_uid == geteuid() && mode & 0o077 != 0 {
      throw ClusterError(
        .usage,
        "sslkey '\(file)' has group or world access (mode \(octal)); PostgreSQL's clients refuse a private key others can read: run `chmod 600 '\(file)'`"
      )
    }
    if status.st_uid == 0 && status.st_uid != geteuid() && mode & 0o037 != 0 {
      throw ClusterError(
        .usage,
        "sslkey '\(file)' is owned by root with mode \(octal); PostgreSQL's clients take a root-owned key only when at most its group can read it: run `chmod 640 '\(file)'`"
      )
    }
    do {
      return try NIOSSLPrivateKey(file: file, format: .pem)
    } catch {
      let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
      if text.contains("ENCRYPTED") {
        throw ClusterError(
          .usage,
          "sslkey '\(file)' is encrypted with a passphrase, which vmlab cannot ask for (it runs as a service); decrypt it with `openssl pkey -in '\(file)' -out KEY` and keep KEY mode 0600"
        )
      }
      throw ClusterError(
        .usage,
        "sslkey '\(file)' holds no PEM private key vmlab can read; give the key of the client certificate in PEM form (-----BEGIN PRIVATE KEY-----)"
      )
    }
  }

  private static func checkReadable(_ file: String, as parameter: String, what: String) throws {
    guard FileManager.default.isReadableFile(atPath: file) else {
      let why = FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file"
      throw ClusterError(.usage, "\(parameter) '\(file)' cannot be read (\(why)); give the file of \(what)")
    }
  }
}
