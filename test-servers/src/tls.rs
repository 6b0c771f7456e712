//! The certificates of the TLS listeners (OpenBao's, PostgreSQL's, MariaDB's, Redis's), made with rcgen for each server: a CA, a server
//! certificate for `127.0.0.1` and `localhost`, and a client certificate for mutual TLS.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The files written for one server.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
}

impl TlsFiles {
    /// Makes the CA and both certificates and writes them into `dir`.
    pub(crate) fn write(dir: &Path) -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "initkit test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let issue = |names: &[&str], usage| -> Result<(String, String), rcgen::Error> {
            let mut params =
                CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
            params.distinguished_name.push(DnType::CommonName, names[0]);
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_pem, server_key_pem) = issue(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_pem, client_key_pem) =
            issue(&["initkit-client"], ExtendedKeyUsagePurpose::ClientAuth)?;

        let files = Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        for (path, pem) in [
            (&files.ca, ca_cert.pem()),
            (&files.server_cert, server_pem),
            (&files.server_key, server_key_pem),
            (&files.client_cert, client_pem),
            (&files.client_key, client_key_pem),
        ] {
            std::fs::write(path, pem).map_err(|e| rcgen::Error::PemError(e.to_string()))?;
        }
        Ok(files)
    }

    /// Two TLS listeners for OpenBao's configuration, on `ports[0]` (cluster port `ports[1]`)
    /// and, requiring a client certificate, on `ports[2]` (cluster port `ports[3]`).
    /// (Listener options: <https://openbao.org/docs/configuration/listener/tcp/>.)
    pub(crate) fn listeners_hcl(&self, ports: &[u16]) -> String {
        let listener = |port: u16, cluster: u16, mutual: bool| {
            let client = if mutual {
                format!(
                    "  tls_client_ca_file = {:?}\n  tls_require_and_verify_client_cert = true\n",
                    self.ca.display().to_string()
                )
            } else {
                String::new()
            };
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_cert_file = {:?}\n  tls_key_file = {:?}\n{client}}}\n",
                self.server_cert.display().to_string(),
                self.server_key.display().to_string(),
            )
        };
        format!(
            "{}{}",
            listener(ports[0], ports[1], false),
            listener(ports[2], ports[3], true)
        )
    }
}
