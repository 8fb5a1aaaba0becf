/// How a TCP connection to the cluster database uses TLS: libpq's `sslmode` values, meaning what
/// they mean to psql, so one URL works for both.
///
/// The default is libpq's, `prefer`: TLS when the server offers it, without checking who the
/// server is. It keeps every URL that works with psql working with vmlab (a server without TLS,
/// a Debian server with its self-signed "snakeoil" certificate), and it encrypts wherever the
/// server can; what it does not stop is an active attacker who pretends to be the server. Across
/// machines, give `sslmode=verify-full` and the CA that signed the server's certificate.
public enum TLSMode: String, Sendable, CaseIterable {
  /// Never TLS.
  case disable
  /// Plain first; TLS only when the server refuses a connection without it.
  case allow
  /// TLS when the server offers it, plain otherwise; the certificate is not checked.
  case prefer
  /// TLS or nothing; the certificate is not checked (unless `sslrootcert` is given: then, as
  /// libpq does, it is checked as by `verify-ca`).
  case require
  /// TLS, with a certificate signed by a CA in `sslrootcert`.
  case verifyCA = "verify-ca"
  /// TLS, with a certificate signed by a CA in `sslrootcert` and made out to the host of the URL
  /// (its name or its IP address).
  case verifyFull = "verify-full"

  public static let defaultMode = TLSMode.prefer

  /// True when the server's certificate must chain to a trusted CA.
  public var verifiesCertificate: Bool { self == .verifyCA || self == .verifyFull }
}
