import Foundation
import PostgresNIO

/// TLS for a TCP connection to the cluster database, as the URL's `sslmode` and `sslrootcert` ask,
/// and what a failed handshake means in words a user can act on.
extension ClusterURL {
  /// The file libpq reads CA certificates from when `sslrootcert` is not given.
  static var defaultRootCertificate: String {
    (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + "/.postgresql/root.crt"
  }

  /// Whether this URL checks the server's certificate: the verify modes, and `require` with an
  /// explicit `sslrootcert` (as libpq does when it has a root certificate).
  var checksCertificate: Bool { tls.verifiesCertificate || (tls == .require && rootCertificate != nil) }

  /// The TLS context for this URL's mode: the CAs it trusts and whether it checks the host name.
  /// A CA file that cannot be read is a usage error naming it.
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
    do {
      return try NIOSSLContext(configuration: configuration)
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
    do {
      let found = try NIOSSLCertificate.fromPEMFile(file)
      guard !found.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
      return found
    } catch {
      throw ClusterError(
        .usage, "sslrootcert '\(file)' holds no PEM certificate vmlab can read; give the CA's certificate in PEM form")
    }
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
      return "the TLS handshake failed (\(text))"
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
