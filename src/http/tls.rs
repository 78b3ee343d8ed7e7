//! The TLS listener's configuration: rustls with the `ring` provider (it
//! cross-compiles to small routers), TLS 1.2 and 1.3 only with rustls's
//! default suites (no weak ones exist there), HTTP/2 and HTTP/1.1 by ALPN.
//!
//! The handshake itself runs inside each connection's task under
//! `limits.tls_handshake_timeout`, so a client that stalls mid-handshake
//! holds one connection permit, never the accept loop.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Loads the certificate chain and key, naming the file and config key that
/// is wrong when one is.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .with_context(|| format!("tls.cert: cannot read a PEM certificate chain from {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls.cert: {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("tls.key: cannot read a PEM private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("tls: protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls.cert / tls.key: the key does not match the certificate, or is of an unsupported kind")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The client's cipher order is kept on purpose (scanners flag "no server
    // cipher order"): every suite offered is AEAD with forward secrecy, and a
    // cheap phone without AES instructions rightly asks for ChaCha20 first.
    config.ignore_client_order = false;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
