//! The TLS configuration every pool shares: rustls with the `ring` provider (aws-lc-rs would
//! need cmake and clang to build), trusting the system's certificate store.
//!
//! The system store (read by rustls-native-certs, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`) comes first, so a private CA installed on the host works for self-hosted
//! providers; a host without one (a slim container) falls back to the Mozilla roots compiled
//! in by webpki-roots. Extra PEM certificates may be added on top (tests, private CAs).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};

pub(crate) fn client_config(extra_roots_pem: Option<&[u8]>) -> Result<ClientConfig> {
    let mut roots = system_roots();
    if let Some(pem) = extra_roots_pem {
        add_pem(&mut roots, pem)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("tls", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable files in the store are skipped: one bad file must not stop the gateway.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

fn add_pem(roots: &mut RootCertStore, pem: &[u8]) -> Result<()> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| Error::invalid("extra_roots_pem", e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| Error::invalid("extra_roots_pem", e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(Error::invalid(
            "extra_roots_pem",
            "no PEM certificate found in extra_roots_pem",
        ));
    }
    Ok(())
}
