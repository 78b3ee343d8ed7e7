//! The TLS listener's configuration: rustls with the `ring` provider (it
//! cross-compiles to small routers), TLS 1.2 and 1.3 only with rustls's
//! default suites (no weak ones exist there), HTTP/2 and HTTP/1.1 by ALPN.
//!
//! The handshake itself runs inside each connection's task under
//! `limits.tls_handshake_timeout`, so a client that stalls mid-handshake
//! holds one connection permit, never the accept loop.
//!
//! The leaf certificate's expiry (`portico_tls_certificate_expiry_seconds`)
//! is read with the `der` crate: rustls and webpki parse certificates but
//! expose no validity, and a DER reader (one small crate, no macros) is
//! all that reaching one field of RFC 5280's structure takes; an X.509
//! crate would decode every extension for it and bring several more.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Loads the certificate chain and key, naming the file and config key that
/// is wrong when one is.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    load(cert, key).map(|(acceptor, _)| acceptor)
}

/// Like [`acceptor`], with when the leaf certificate expires (its
/// notAfter), read from the same bytes; `None`, and a warning, if that
/// field cannot be read from a certificate rustls took.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<(TlsAcceptor, Option<SystemTime>)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .with_context(|| format!("tls.cert: cannot read a PEM certificate chain from {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls.cert: {} holds no certificate", cert.display());
    }
    let expiry = not_after(&certs[0]);
    if expiry.is_none() {
        tracing::warn!(cert = %cert.display(), "tls.cert: cannot read the certificate's expiry; it is left out of the metrics");
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
    Ok((TlsAcceptor::from(Arc::new(config)), expiry))
}

/// The notAfter of an X.509 certificate (RFC 5280 §4.1):
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE {
/// notBefore, notAfter }, ... }, ... }`, the times as `UTCTime` or
/// `GeneralizedTime`.
fn not_after(cert: &[u8]) -> Option<SystemTime> {
    use der::asn1::{AnyRef, GeneralizedTime, UtcTime};
    use der::{Decode as _, Reader as _, SliceReader, Tag, TagNumber, Tagged as _};
    fn fields(outer: AnyRef<'_>) -> Option<SliceReader<'_>> {
        SliceReader::new(outer.value()).ok()
    }
    let mut certificate = fields(AnyRef::from_der(cert).ok()?)?;
    let mut tbs = fields(certificate.decode().ok()?)?;
    let mut field: AnyRef<'_> = tbs.decode().ok()?;
    if field.tag() == (Tag::ContextSpecific { constructed: true, number: TagNumber(0) }) {
        field = tbs.decode().ok()?; // past the version, at the serial number
    }
    let _serial = field;
    let _signature: AnyRef<'_> = tbs.decode().ok()?;
    let _issuer: AnyRef<'_> = tbs.decode().ok()?;
    let mut validity = fields(tbs.decode().ok()?)?;
    let _not_before: AnyRef<'_> = validity.decode().ok()?;
    let not_after: AnyRef<'_> = validity.decode().ok()?;
    let since_epoch = match not_after.tag() {
        Tag::UtcTime => UtcTime::try_from(not_after).ok()?.to_unix_duration(),
        Tag::GeneralizedTime => GeneralizedTime::try_from(not_after).ok()?.to_unix_duration(),
        _ => return None,
    };
    Some(UNIX_EPOCH + since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn certificate(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["portal.example.vn".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_expiry_as_utc_time_and_as_generalized_time() {
        // UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
        for ((year, month, day), unix) in [((2027, 1, 15), 1_799_971_200), ((2052, 6, 1), 2_600_812_800)] {
            let expiry = not_after(&certificate(year, month, day));
            assert_eq!(expiry, Some(UNIX_EPOCH + Duration::from_secs(unix)), "{year}");
        }
    }

    #[test]
    fn anything_else_has_no_expiry() {
        let cert = certificate(2027, 1, 15);
        assert_eq!(not_after(&cert[..cert.len() / 2]), None);
        assert_eq!(not_after(b"not a certificate"), None);
        assert_eq!(not_after(&[]), None);
    }
}
