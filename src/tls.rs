//! TLS configuration: identities (certificate chain + key), server and client configs.
//!
//! This file only *prepares* TLS. The session itself, the layer that sits inside a connection
//! between the socket and the service, lives in `src/reactor/tls.rs`, because it is driven by
//! the loop. Everything here uses rustls with one crypto provider, `ring` (also for the
//! self-signed certificate and its fingerprint), and PEM parsing from `rustls-pki-types`.
//!
//! Three ways to get an identity:
//! * `--tls-cert FILE --tls-key FILE`: a PEM chain (leaf first) and a PEM key (PKCS#8, PKCS#1
//!   RSA or SEC1 EC), as issued by any CA: [`Identity::from_pem_files`], served through
//!   [`CertFiles`], which `reactor serve` reads again on `SIGHUP`.
//! * `--tls-self-signed`: a fresh certificate for `localhost`, `127.0.0.1` and `::1`, made in
//!   memory at start ([`Identity::self_signed`]); its SHA-256 fingerprint is printed so a
//!   client can pin it, and `--tls-write-cert FILE` writes its PEM so a client can trust it
//!   (`--cacert`).
//! * In tests: [`Identity::self_signed`] too; no private key is ever committed.

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// Why TLS could not be set up.
#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    Pem(PathBuf, String),
    /// The certificate file held no certificate.
    NoCertificates(PathBuf),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    Config(rustls::Error),
    /// Generating a self-signed certificate failed.
    Generate(String),
    /// Writing a certificate file failed.
    Write(PathBuf, io::Error),
    /// A client needs to know whom to trust.
    NoTrust,
    /// The key file (second) holds a key other than the certificate's (first).
    KeyMismatch(PathBuf, PathBuf),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem(path, e) => write!(f, "{}: {e}", path.display()),
            TlsError::NoCertificates(path) => write!(f, "{}: no PEM certificate in it", path.display()),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
            TlsError::Generate(e) => write!(f, "generating a self-signed certificate: {e}"),
            TlsError::Write(path, e) => write!(f, "writing {}: {e}", path.display()),
            TlsError::KeyMismatch(cert, key) => {
                write!(f, "{}: not the private key of the certificate in {}", key.display(), cert.display())
            }
            TlsError::NoTrust => {
                write!(
                    f,
                    "TLS client needs --ca FILE (the server's certificate or its CA) or --insecure-skip-verify"
                )
            }
        }
    }
}

impl std::error::Error for TlsError {}

/// What is wrong with the PEM file at `path`, in words: the parser's own message shows the
/// marker of a section cut short (a file still being copied) as a list of byte values.
fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    use rustls::pki_types::pem::Error;
    let why = match e {
        Error::MissingSectionEnd { end_marker } => {
            format!("no -----END {}----- line (the file is cut short)", String::from_utf8_lossy(&end_marker))
        }
        Error::IllegalSectionStart { line } => {
            format!("malformed line: {}", String::from_utf8_lossy(&line))
        }
        other => other.to_string(),
    };
    TlsError::Pem(path.to_path_buf(), why)
}

/// The crypto provider used everywhere: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate as PEM (for `--tls-write-cert` and tests' trust stores).
    pub cert_pem: String,
}

impl Identity {
    /// Loads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_error(cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificates(cert.to_path_buf()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
        let cert_pem =
            std::fs::read_to_string(cert).map_err(|e| TlsError::Pem(cert.to_path_buf(), e.to_string()))?;
        Ok(Identity { chain, key: key_der, cert_pem })
    }

    /// A fresh self-signed certificate for `names` (DNS names or IP addresses), ECDSA P-256.
    pub fn self_signed(names: &[&str]) -> Result<Identity, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified =
            rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert_pem = certified.cert.pem();
        let chain = vec![certified.cert.der().clone()];
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(Identity { chain, key, cert_pem })
    }

    /// The chain and key as rustls serves them; fails if the key is not the certificate's.
    fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider())
            .map_err(TlsError::Config)
    }

    /// SHA-256 of the leaf certificate, as colon-separated hex (what browsers and
    /// `openssl x509 -fingerprint -sha256` show).
    pub fn fingerprint_sha256(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.chain[0].as_ref());
        digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }

    /// Writes the leaf certificate as PEM, for clients to trust: to a new file beside the
    /// one `path` names (through any symlinks, even one whose file does not exist yet), then
    /// renamed over it, so that a client reading it while a reload rewrites it finds the old
    /// certificate or the new one, never half of one. The new file is created exclusively
    /// under a name of its own (another server's write cannot interleave, a planted symlink
    /// is not followed) and takes the old file's mode, owner and group (as far as this
    /// process may set them). Written in place instead: what is not a regular file, anything
    /// under `/dev` or `/proc` (`/dev/stdout`, which may name the server's own log file), and
    /// a file whose directory takes no new file (not writable, or a name too long for the
    /// suffix).
    pub fn write_cert(&self, path: &Path) -> Result<(), TlsError> {
        let failed = |e| TlsError::Write(path.to_path_buf(), e);
        let in_place = |target: &Path| std::fs::write(target, &self.cert_pem).map_err(failed);
        if path.starts_with("/dev") || path.starts_with("/proc") {
            return in_place(path);
        }
        let target = resolve(path);
        let old = std::fs::metadata(&target).ok();
        if old.as_ref().is_some_and(|m| !m.is_file()) {
            return in_place(&target);
        }
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let mut fresh = target.as_os_str().to_owned();
        fresh.push(format!(".{}.{}.new", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
        let fresh = PathBuf::from(fresh);
        let Ok(mut file) = std::fs::OpenOptions::new().write(true).create_new(true).open(&fresh) else {
            return in_place(&target);
        };
        let written = file
            .write_all(self.cert_pem.as_bytes())
            .and_then(|()| match &old {
                Some(m) => {
                    use std::os::unix::fs::MetadataExt;
                    // Owner and group first (only root may give a file away: otherwise
                    // refused, and the file stays ours), then the mode.
                    let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
                    file.set_permissions(m.permissions())
                }
                None => Ok(()),
            })
            .and_then(|()| std::fs::rename(&fresh, &target));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&fresh);
            failed(e)
        })
    }
}

/// The file `path` names, through symlinks: the canonical path if it exists, else the
/// target of a (possibly dangling) symlink chain, else `path` itself (a file yet to be made).
fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    let mut current = path.to_path_buf();
    // A chain of at most 40 links, as the kernel's own limit (ELOOP) allows.
    for _ in 0..40 {
        let Ok(link) = std::fs::read_link(&current) else { break };
        current = match current.parent() {
            Some(dir) => dir.join(link),
            None => link,
        };
    }
    current
}

/// A server configuration: TLS 1.3 and 1.2, no client certificates, the given ALPN protocols
/// (the HTTP service offers `http/1.1`), serving `identity` for as long as it runs.
pub fn server_config(identity: &Identity, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let config = server_builder()?
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(TlsError::Config)?;
    Ok(with_alpn(config, alpn))
}

/// [`server_config`], serving whatever certificate `files` holds at each handshake, so that
/// [`CertFiles::reload`] changes it for every connection that comes after.
pub fn server_config_from_files(
    files: Arc<CertFiles>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(with_alpn(server_builder()?.with_cert_resolver(files), alpn))
}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>, TlsError>
{
    Ok(ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth())
}

fn with_alpn(mut config: ServerConfig, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A certificate and key read from PEM files, which can be read again while the server runs:
/// certificates expire (a public CA's after 90 days or less), and replacing one should not
/// mean a restart that drops every connection. `reactor serve` calls [`CertFiles::reload`] on
/// `SIGHUP`, as nginx reloads on it.
///
/// rustls asks for the certificate at each handshake ([`ResolvesServerCert`]), so a reload
/// takes effect at the next handshake; a connection already established keeps the session it
/// has. A reload that fails (a file half-written, a key that does not match its certificate)
/// changes nothing: the certificate served so far stays.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertFiles {
    /// Reads both files, and checks that the key is the certificate's; returns the identity as
    /// well (for its fingerprint and `--tls-write-cert`).
    pub fn load(cert: &Path, key: &Path) -> Result<(Arc<CertFiles>, Identity), TlsError> {
        let (identity, served) = read_pair(cert, key)?;
        let current = RwLock::new(Arc::new(served));
        Ok((Arc::new(CertFiles { cert: cert.to_path_buf(), key: key.to_path_buf(), current }), identity))
    }

    /// Reads both files again and serves what they now hold from the next handshake on;
    /// returns the new identity (for its fingerprint and `--tls-write-cert`). On error,
    /// nothing changes.
    pub fn reload(&self) -> Result<Identity, TlsError> {
        let (identity, fresh) = read_pair(&self.cert, &self.key)?;
        // A poisoned lock only means a panic elsewhere while it was held; the value in it is
        // a whole Arc either way.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(identity)
    }

    /// The certificate file, for messages.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

/// Reads the certificate and key files: the identity, and the same as rustls serves it,
/// naming both files when the key is not the certificate's.
fn read_pair(cert: &Path, key: &Path) -> Result<(Identity, CertifiedKey), TlsError> {
    let identity = Identity::from_pem_files(cert, key)?;
    let served = identity.certified_key().map_err(|e| match e {
        TlsError::Config(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            TlsError::KeyMismatch(cert.to_path_buf(), key.to_path_buf())
        }
        other => other,
    })?;
    Ok((identity, served))
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner)))
    }
}

/// A client configuration trusting the certificates in `ca` (PEM), or, with `insecure`,
/// any certificate at all (for trying things out against a self-signed server; never in
/// production: it gives up TLS's protection against an active attacker).
pub fn client_config(ca: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let path = ca.ok_or(TlsError::NoTrust)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| pem_error(path, e))? {
            let cert = cert.map_err(|e| pem_error(path, e))?;
            roots.add(cert).map_err(TlsError::Config)?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoCertificates(path.to_path_buf()));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The name a client checks the certificate against: the host part of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match addr.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Generate(format!("server name {host:?}: {e}")))
}

/// Accepts any server certificate but still checks the handshake signatures (so the session
/// is encrypted, just not authenticated). Behind `--insecure-skip-verify` only.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_cert_replaces_the_file_a_path_names_keeping_its_mode_and_its_links() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = std::env::temp_dir().join(format!("reactor-write-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, link) = (dir.join("trust.pem"), dir.join("link.pem"));
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        symlink(&file, &link).unwrap();
        let id = Identity::self_signed(&["localhost"]).unwrap();
        // Through the link: the file it names is replaced, the link stays a link.
        id.write_cert(&link).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), id.cert_pem);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        // A link to a file not yet made: written through, the link stays.
        let (later, dangling) = (dir.join("later.pem"), dir.join("dangling.pem"));
        symlink(&later, &dangling).unwrap();
        id.write_cert(&dangling).unwrap();
        assert_eq!(std::fs::read_to_string(&later).unwrap(), id.cert_pem);
        assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
        // The owner and group stay, where this process may keep them (root may).
        use std::os::unix::fs::MetadataExt;
        if std::os::unix::fs::chown(&file, Some(65534), Some(65534)).is_ok() {
            id.write_cert(&file).unwrap();
            let meta = std::fs::metadata(&file).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        }
        // Not a regular file: written in place.
        id.write_cert(Path::new("/dev/null")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn self_signed_identity_builds_configs_and_has_a_fingerprint() {
        let id = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let fp = id.fingerprint_sha256();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        server_config(&id, &[b"http/1.1"]).unwrap();
        let dir = std::env::temp_dir().join(format!("reactor-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.pem");
        id.write_cert(&path).unwrap();
        client_config(Some(&path), false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_cut_short_is_named_in_words() {
        // What a reload finds when the new file was copied over the old one rather than
        // renamed, and the copy is not done yet.
        let id = Identity::self_signed(&["localhost"]).unwrap();
        let dir = std::env::temp_dir().join(format!("reactor-tls-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &id.cert_pem[..id.cert_pem.len() / 2]).unwrap();
        std::fs::write(&key, "").unwrap();
        let said = Identity::from_pem_files(&cert, &key).unwrap_err().to_string();
        assert!(said.contains("CERTIFICATE") && !said.contains("[67, 69"), "{said}");
        let said = client_config(Some(&cert), false).unwrap_err().to_string();
        assert!(said.contains("CERTIFICATE") && !said.contains("[67, 69"), "{said}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_without_trust_is_refused_clearly() {
        let err = client_config(None, false).unwrap_err();
        assert!(err.to_string().contains("--ca FILE"));
    }

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(server_name("127.0.0.1:443").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("localhost:8443").unwrap(), ServerName::DnsName(_)));
        assert!(matches!(server_name("[::1]:8443").unwrap(), ServerName::IpAddress(_)));
    }
}
