//! SIP over TLS (RFC 3261 §26.2, RFC 5630 §3): the server side (our certificate and key,
//! PEM files, reloaded on SIGHUP without touching the connections already up) and the
//! client side (the peer's certificate checked against Mozilla's roots plus
//! `DIALTONE_TLS_CA`, and its name: the host the URI named, or its IP address).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The crypto provider: ring, as the rest of the binary uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: the acceptor of the moment (a reload swaps it).
#[derive(Clone)]
pub struct Server {
    acceptor: Arc<RwLock<tokio_rustls::TlsAcceptor>>,
    cert: PathBuf,
    key: PathBuf,
}

impl Server {
    /// Loads `cert` (a PEM chain) and `key` (a PEM private key).
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Server> {
        let acceptor = acceptor(cert, key)?;
        Ok(Server { acceptor: Arc::new(RwLock::new(acceptor)), cert: cert.into(), key: key.into() })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.read().map(|a| a.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reads the files again; on an error the old certificate stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = acceptor(&self.cert, &self.key)?;
        if let Ok(mut a) = self.acceptor.write() {
            *a = fresh;
        }
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("DIALTONE_TLS_CERT {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("DIALTONE_TLS_CERT {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("DIALTONE_TLS_CERT {}: no certificate in it", cert.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("DIALTONE_TLS_KEY {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("DIALTONE_TLS_CERT/DIALTONE_TLS_KEY: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The client side: the connector, and the names to check peers' certificates for.
#[derive(Clone)]
pub struct Client {
    connector: tokio_rustls::TlsConnector,
    names: Arc<RwLock<std::collections::HashMap<SocketAddr, String>>>,
}

impl Client {
    /// Trusts Mozilla's roots and, if given, the PEM certificates in `extra_ca` (a
    /// private CA, or a self-signed peer).
    pub fn new(extra_ca: Option<&Path>) -> anyhow::Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<_, _>>())
                .map_err(|e| anyhow::anyhow!("DIALTONE_TLS_CA {}: {e}", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("DIALTONE_TLS_CA {}: no certificate in it", path.display());
            }
            for c in certs {
                roots.add(c).map_err(|e| anyhow::anyhow!("DIALTONE_TLS_CA {}: {e}", path.display()))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            names: Arc::new(RwLock::new(Default::default())),
        })
    }

    /// Checks the peer at `addr` for the host name `name` (the trunk's, a URI's).
    pub fn name(&self, addr: SocketAddr, name: &str) {
        if let Ok(mut n) = self.names.write() {
            n.insert(addr, name.to_string());
        }
    }

    /// The connector, and the name `addr`'s certificate must carry (its host name if one
    /// was given, else its IP address).
    pub fn for_peer(&self, addr: SocketAddr) -> (tokio_rustls::TlsConnector, ServerName<'static>) {
        let name = self.names.read().ok().and_then(|n| n.get(&addr).cloned());
        let server =
            name.and_then(|n| ServerName::try_from(n).ok()).unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        (self.connector.clone(), server)
    }
}
