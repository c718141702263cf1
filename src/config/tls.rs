//! The `[tls]` files turned into a rustls server config. Done at load time, so a bad
//! certificate or a key that does not match it fails `check-config` and a reload, not
//! the first handshake.

use std::path::Path;
use std::sync::Arc;

use pki_types::pem::{self, PemObject};
use pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Which file a problem is in, and what it is. Never contains key material: rustls and
/// pki-types errors name the kind of problem only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    Certificate(String),
    PrivateKey(String),
}

pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    if certificates.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certificates)
}

/// Builds the server side of TLS from a certificate chain file and a key file, with the
/// ring provider passed explicitly (the one provider trunkd uses). Both files are checked
/// even when the first fails, so every problem is reported at once.
pub fn server_config(
    certificate: &Path,
    private_key: &Path,
) -> Result<Arc<ServerConfig>, Vec<TlsProblem>> {
    let chain = certificates(certificate).map_err(TlsProblem::Certificate);
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(|error| {
        TlsProblem::PrivateKey(match error {
            pem::Error::NoItemsFound => "no PEM private key in the file".to_owned(),
            other => other.to_string(),
        })
    });
    let (chain, key) = match (chain, key) {
        (Ok(chain), Ok(key)) => (chain, key),
        (chain, key) => return Err([chain.err(), key.err()].into_iter().flatten().collect()),
    };
    ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| vec![TlsProblem::Certificate(error.to_string())])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|error| vec![TlsProblem::PrivateKey(error.to_string())])
}

/// The client side of TLS toward carriers: the system's trusted roots plus the extra CAs
/// of `ca_file`, with the ring provider passed explicitly. Server certificates are always
/// verified; there is no switch to turn that off.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // Unreadable entries of the system store are skipped; an empty store plus no ca_file
    // is still an error below.
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if let Some(path) = ca_file {
        for certificate in certificates(path)? {
            roots
                .add(certificate)
                .map_err(|error| format!("ca_file {}: {error}", path.display()))?;
            extra += 1;
        }
    }
    if added + extra == 0 {
        return Err("no trusted CA: the system store is empty and no ca_file is set".into());
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
