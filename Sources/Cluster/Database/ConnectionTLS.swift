import Foundation
import PostgresNIO

/// TLS for a TCP connection to the cluster database, as the URL's `sslmode`, `sslrootcert`,
/// `sslcert` and `sslkey` ask, and what a failed handshake means in words a user can act on.
extension ClusterURL {
  /// The file libpq reads CA certificates from when `sslrootcert` is not given.
  static var defaultRootCertificate: String {
    (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.postgresql/root.crt"
  }

  /// Whether this URL checks the server's certificate: the verify modes, and `require` with an
  /// explicit `sslrootcert` (as libpq does when it has a root certificate).
  var checksCertificate: Bool { tls.verifiesCertificate || (tls == .require && rootCertificate != nil) }

  /// The TLS context for this URL's mode: the CAs it trusts, whether it checks the host name, and
  /// the client certificate it shows. A CA, certificate or key file that cannot be used is a
  /// usage error naming it.
  func tlsContext() throws -> NIOSSLContext {
    var configuration = TLSConfiguration.makeClientConfiguration()
    if checksCertificate {
      configuration.certificateVerification = tls == .verifyFull ? .fullVerification : .noHostnameVerification
      if rootCertificate == "system" {
        configuration.trustRoots = .default
      } else {
        let file = rootCertificate ?? Self.defaultRootCertificate
        configuration.trustRoots = .certificates(try Self.certificates(in: file, for: self))
      }
    } else {
      configuration.certificateVerification = .none
    }
    let client = try ClientCertificate.load(for: self)
    if let client {
      configuration.certificateChain = client.chain.map { .certificate($0) }
      configuration.privateKey = .privateKey(client.key)
    }
    do {
      return try NIOSSLContext(configuration: configuration)
    } catch NIOSSLError.failedToLoadPrivateKey where client != nil {
      // The key was read above; BoringSSL refuses it here only when it is not the certificate's.
      throw ClusterError(
        .usage,
        "sslkey '\(client!.keyFile)' is not the private key of sslcert '\(client!.certificateFile)'; give the key the certificate was made for (`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key when they belong together)"
      )
    } catch {
      throw ClusterError(.database, "cannot set up TLS for the cluster database \(self): \(error)")
    }
  }

  private static func certificates(in file: String, for url: ClusterURL) throws -> [NIOSSLCertificate] {
    let given = url.rootCertificate != nil
    guard FileManager.default.isReadableFile(atPath: file) else {
      throw ClusterError(
        .usage,
        given
          ? "sslrootcert '\(file)' cannot be read (\(FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file")); give the file of the CA that signed the database server's certificate"
          : "sslmode=\(url.tls.rawValue) checks the server's certificate, but no CA is given: add sslrootcert=FILE (the CA that signed it) or sslrootcert=system to the URL, or put the CA in \(file)"
      )
    }
    return try pemCertificates(
      in: file,
      orSay: "sslrootcert '\(file)' holds no PEM certificate vmlab can read; give the CA's certificate in PEM form")
  }

  /// PostgresNIO's TLS setting for this URL's TCP connection (`allow` starts without TLS).
  func tlsSetting(firstAttempt: Bool = true) throws -> PostgresConnection.Configuration.TLS {
    switch tls {
    case .disable: return .disable
    case .allow: return firstAttempt ? .disable : .require(try tlsContext())
    case .prefer: return .prefer(try tlsContext())
    case .require, .verifyCA, .verifyFull: return .require(try tlsContext())
    }
  }
}

extension ClusterDatabase {
  /// What a TLS failure means, or nil when `error` is not about TLS.
  static func tlsReason(_ error: Error, url: ClusterURL) -> String? {
    if let error = error as? PSQLError, error.code == .sslUnsupported {
      return
        "the server does not offer TLS, and sslmode=\(url.tls.rawValue) demands it; turn ssl on in its postgresql.conf, or use sslmode=prefer on a network you trust"
    }
    if let error = error as? PSQLError, error.code == .authMechanismRequiresPassword, url.password == nil {
      // pg_hba.conf's first line that matches decides: a `cert` line after a password line for
      // the same hosts is never reached, the usual slip when client certificates are added.
      let certificate = ClientCertificate.file(for: url).map {
        "; the URL shows a client certificate (sslcert '\($0)'), so if the server should take it, put its `hostssl … cert` line in pg_hba.conf before the lines that ask a password of this host (the first line that matches decides)"
      }
      return
        "the server asks for a password for user '\(url.user)' and the URL gives none: add it (postgresql://\(url.user):PASSWORD@…)\(certificate ?? ", or log in with a client certificate (sslcert, sslkey)")"
    }
    if let error = error as? PSQLError, let message = error.serverInfo?[.message] {
      return clientCertificateRefusal(message, url: url)
    }
    if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
      return
        "the server's certificate is not made out to '\(url.host ?? "")' (sslmode=verify-full checks the host name against the certificate's names); connect by a name or address the certificate names, or fix the certificate"
    }
    if let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error {
      let text = "\(inner)"
      if text.contains("CERTIFICATE_VERIFY_FAILED") {
        let trusted =
          url.rootCertificate.map { $0 == "system" ? "the system's trust store" : "sslrootcert '\($0)'" }
          ?? "'\(ClusterURL.defaultRootCertificate)'"
        return
          "the server's certificate could not be verified: it is not signed by a CA in \(trusted) (or it expired); give the CA that signed it as sslrootcert, or check the server's certificate"
      }
      if let refusal = clientCertificateAlert(text, url: url) { return refusal }
      return "the TLS handshake failed (\(text))"
    }
    // Under TLS 1.3 the server checks this side's certificate after the client's handshake is
    // over, so its alert arrives with the first read rather than as a failed handshake.
    if let error = error as? BoringSSLError, let refusal = clientCertificateAlert("\(error)", url: url) {
      return refusal
    }
    return nil
  }

  /// What a TLS alert from the server means when this side showed a certificate: the server
  /// refused it. Nil for other errors, or when no certificate was shown.
  private static func clientCertificateAlert(_ text: String, url: ClusterURL) -> String? {
    guard let alert = text.range(of: "[A-Z0-9_]*_ALERT_[A-Z0-9_]*", options: .regularExpression),
      let certificate = ClientCertificate.file(for: url)
    else { return nil }
    return
      "the server refused the client certificate sslcert '\(certificate)' during the TLS handshake (its alert: \(text[alert])): it is not signed by a CA in the server's ssl_ca_file, or it expired; give a certificate that CA signed"
  }

  /// What the server's refusal of a login says about the client certificate, or nil when it is
  /// about something else.
  private static func clientCertificateRefusal(_ message: String, url: ClusterURL) -> String? {
    let user = url.user
    if message.contains("requires a valid client certificate") {
      return
        "the server asks for a client certificate for user '\(user)' (a `cert` line of its pg_hba.conf) and none was given: add sslcert=FILE&sslkey=FILE to the URL (a certificate made out to CN=\(user), signed by a CA in the server's ssl_ca_file, and its key), or put them in ~/.postgresql/postgresql.crt and postgresql.key"
    }
    if message.contains("certificate authentication failed"), let certificate = ClientCertificate.file(for: url) {
      return
        "the server refused the client certificate sslcert '\(certificate)' for user '\(user)' (\(message)): the certificate's common name must be the user name; give a certificate made out to CN=\(user), or map its name to \(user) in the server's pg_ident.conf"
    }
    return nil
  }
}

extension ClusterURL {
  /// The host of a TCP URL.
  var host: String? {
    if case .tcp(let host, _) = endpoint { return host }
    return nil
  }
}

/// The certificates of a PEM file (at least one), or a usage error saying `problem`.
func pemCertificates(in file: String, orSay problem: String) throws -> [NIOSSLCertificate] {
  do {
    let found = try NIOSSLCertificate.fromPEMFile(file)
    guard !found.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
    return found
  } catch {
    throw ClusterError(.usage, problem)
  }
}
