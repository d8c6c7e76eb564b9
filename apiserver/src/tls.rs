//! Certificates and credentials: a self-generated CA, a serving certificate signed by it, a
//! bearer token, and the kubeconfig that ties them together. All are created once in the data
//! directory and reused on later starts, so clients keep working across restarts.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Credential failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file is unusable.
    #[error("{path}: invalid PEM: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The server's credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// CA certificate (PEM); clients trust it.
    pub ca_pem: String,
    /// CA private key (PEM); signs serving certificates of other components.
    pub ca_key_pem: String,
    /// Serving certificate (PEM).
    pub cert_pem: String,
    /// Serving key (PEM).
    pub key_pem: String,
    /// Bearer token clients authenticate with.
    pub token: String,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "titus-ca");
    dn.push(DnType::OrganizationName, "titus");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// Issues a serving certificate for `names` (DNS names or IP addresses), signed by the CA.
/// Returns (certificate PEM, key PEM).
///
/// # Errors
/// Generation failures or an unusable CA key.
pub fn issue_serving_cert(
    ca_key_pem: &str,
    names: &[String],
) -> Result<(String, String), TlsError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "titus".into()),
    );
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Loads credentials from `dir`, creating what is missing.
///
/// # Errors
/// File or generation failures.
pub fn load_or_create(dir: &Path, extra_names: &[String]) -> Result<Credentials, TlsError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (srv_crt, srv_key) = (dir.join("apiserver.crt"), dir.join("apiserver.key"));
    let token_path = dir.join("token");
    if !ca_crt.exists() || !ca_key.exists() {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key, &key.serialize_pem())?;
        fs::write(&ca_crt, cert.pem()).map_err(io(&ca_crt))?;
        let _ = fs::remove_file(&srv_crt);
    }
    let ca_pem = fs::read_to_string(&ca_crt).map_err(io(&ca_crt))?;
    let ca_key_pem = fs::read_to_string(&ca_key).map_err(io(&ca_key))?;
    if !srv_crt.exists() || !srv_key.exists() {
        let mut names: Vec<String> = vec![
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "titus-apiserver".into(),
        ];
        names.extend(extra_names.iter().cloned());
        let (cert, key) = issue_serving_cert(&ca_key_pem, &names)?;
        write_private(&srv_key, &key)?;
        fs::write(&srv_crt, cert).map_err(io(&srv_crt))?;
    }
    if !token_path.exists() {
        use rand::Rng;
        let token: String = (0..32)
            .map(|_| format!("{:x}", rand::rng().random_range(0..16u8)))
            .collect();
        write_private(&token_path, &token)?;
    }
    Ok(Credentials {
        ca_pem,
        ca_key_pem,
        cert_pem: fs::read_to_string(&srv_crt).map_err(io(&srv_crt))?,
        key_pem: fs::read_to_string(&srv_key).map_err(io(&srv_key))?,
        token: fs::read_to_string(&token_path)
            .map_err(io(&token_path))?
            .trim()
            .to_owned(),
    })
}

/// Generates credentials in memory (tests).
///
/// # Errors
/// Generation failures.
pub fn ephemeral() -> Result<Credentials, TlsError> {
    let key = KeyPair::generate()?;
    let ca = ca_params()?.self_signed(&key)?;
    let ca_key_pem = key.serialize_pem();
    let (cert_pem, key_pem) =
        issue_serving_cert(&ca_key_pem, &["localhost".into(), "127.0.0.1".into()])?;
    Ok(Credentials {
        ca_pem: ca.pem(),
        ca_key_pem,
        cert_pem,
        key_pem,
        token: uuid::Uuid::new_v4().simple().to_string(),
    })
}

fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(contents.as_bytes()).map_err(io(path))
}

/// rustls server configuration offering HTTP/2 and HTTP/1.1.
///
/// # Errors
/// Unusable certificate or key.
pub fn server_config(creds: &Credentials) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    fn pem_err(what: &'static str) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError {
        move |e| TlsError::Pem {
            path: what.into(),
            message: e.to_string(),
        }
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(creds.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(pem_err("apiserver.crt"))?;
    let key = PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes())
        .map_err(pem_err("apiserver.key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A kubeconfig for `server` (e.g. `https://127.0.0.1:6443`) with the token and CA.
pub fn kubeconfig(server: &str, creds: &Credentials) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(&creds.ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: titus
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: titus-admin
  user:
    token: {token}
contexts:
- name: titus
  context:
    cluster: titus
    user: titus-admin
    namespace: default
current-context: titus
preferences: {{}}
",
        token = creds.token
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("titus-tls-{}", uuid::Uuid::new_v4()));
        let first = load_or_create(&dir, &[]).unwrap();
        let second = load_or_create(&dir, &[]).unwrap();
        assert_eq!(first.token, second.token);
        assert_eq!(first.cert_pem, second.cert_pem);
        assert!(server_config(&first).is_ok());
        let kubeconfig = kubeconfig("https://127.0.0.1:6443", &first);
        assert!(kubeconfig.contains("server: https://127.0.0.1:6443"));
        assert!(kubeconfig.contains(&first.token));
    }
}
