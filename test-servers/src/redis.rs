//! Redis (Debian's `redis-server`, 7): no persistence, a password for the `default` user and one
//! ACL user with its own password, listening on a free loopback port, and optionally on a
//! second one with TLS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::signal::Signal;

use crate::host::{self, HOST, RunAs};
use crate::process::ServerProcess;
use crate::tls::TlsFiles;
use crate::{StartError, or_skip, owned_or_skip};

const SERVER: &str = "Redis";

/// A running Redis server. Dropping an owned one ([`Redis::start`]) stops it; the shared one
/// ([`redis()`]) stops when the test binary ends.
///
/// # Examples
///
/// ```no_run
/// let Some(redis) = test_servers::redis() else { return }; // skipped: not installed
/// assert_eq!(redis.cli(&["PING"]).unwrap(), "PONG");
/// assert!(redis.url().starts_with("redis://:"));
/// ```
#[derive(Debug)]
pub struct Redis {
    // Declared before `dir`: the server stops before its directory is removed.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    acl_password: String,
    tls: Option<(u16, TlsFiles)>,
}

/// The Redis server shared by every test of this test binary, started on first use; `None`
/// (after one line naming the install command) when Redis is not installed.
///
/// # Panics
///
/// When Redis is installed but does not start (the panic shows its log), or is missing under CI
/// (`CI=true`).
pub fn redis() -> Option<&'static Redis> {
    static SHARED: OnceLock<Result<Redis, StartError>> = OnceLock::new();
    or_skip(SHARED.get_or_init(Redis::try_start).as_ref())
}

impl Redis {
    /// The ACL user every server has besides `default`.
    pub const ACL_USER: &'static str = "initkit";

    /// A private server for one test; `None` after one line when Redis is not installed. It
    /// stops when dropped.
    ///
    /// # Panics
    ///
    /// As [`redis()`].
    pub fn start() -> Option<Self> {
        owned_or_skip(Self::try_start())
    }

    /// Starts a private server.
    ///
    /// # Errors
    ///
    /// [`StartError`] when Redis is not installed or does not start.
    pub fn try_start() -> Result<Self, StartError> {
        Self::try_start_with(false)
    }

    /// A private server that also listens with TLS on [`Redis::tls_port`], with a certificate
    /// for `127.0.0.1` and `localhost` signed by a fresh CA, [`Redis::ca_file`] (clients need no
    /// certificate of their own); `None` after one line when Redis is not installed.
    ///
    /// # Panics
    ///
    /// As [`redis()`].
    pub fn start_tls() -> Option<Self> {
        owned_or_skip(Self::try_start_with(true))
    }

    fn try_start_with(tls: bool) -> Result<Self, StartError> {
        let server = host::find_program("redis-server", &[PathBuf::from("/usr/bin/redis-server")])
            .ok_or_else(|| {
                StartError::missing(SERVER, "redis-server", "Debian package redis-server")
            })?;
        let dir = host::server_dir(SERVER, "initkit-redis-", RunAs::current())?;
        let password = host::random_secret("redis");
        let acl_password = host::random_secret("acl");
        let files = if tls {
            let files = TlsFiles::write(dir.path())
                .map_err(|e| StartError::failed(SERVER, format!("tls files: {e}"), ""))?;
            Some(files)
        } else {
            None
        };
        let ((process, port), tls_port) = host::retry_port_clash(|| {
            let ports = host::free_ports(2);
            let tls = files.as_ref().map(|files| (ports[1], files));
            let started = launch(&server, dir.path(), &password, &acl_password, ports[0], tls)?;
            Ok((started, ports[1]))
        })?;
        Ok(Self {
            process,
            dir,
            port,
            password,
            acl_password,
            tls: files.map(|files| (tls_port, files)),
        })
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    /// The TLS port ([`Redis::start_tls`]); `None` for a server without TLS.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    /// The PEM file of the CA that signed the TLS certificate ([`Redis::start_tls`]); `None`
    /// for a server without TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(_, files)| files.ca.as_path())
    }

    /// The `default` user's password (`AUTH <password>`; fresh for each server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The ACL user's name, [`Redis::ACL_USER`] (all keys, channels and commands).
    pub fn acl_user(&self) -> &str {
        Self::ACL_USER
    }

    /// The ACL user's password (`AUTH initkit <password>`).
    pub fn acl_password(&self) -> &str {
        &self.acl_password
    }

    /// `redis://:<password>@127.0.0.1:<port>/0` (the `default` user).
    pub fn url(&self) -> String {
        format!("redis://:{}@{HOST}:{}/0", self.password, self.port)
    }

    /// `redis://initkit:<password>@127.0.0.1:<port>/0` (the ACL user).
    pub fn acl_url(&self) -> String {
        format!(
            "redis://{}:{}@{HOST}:{}/0",
            Self::ACL_USER,
            self.acl_password,
            self.port
        )
    }

    /// Runs one command with `redis-cli` as the `default` user; the reply as `redis-cli` prints it
    /// unformatted.
    ///
    /// # Errors
    ///
    /// `redis-cli`'s stderr, or the server's error reply (`ERR ...`, `WRONGPASS ...`).
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let client = host::find_program("redis-cli", &[PathBuf::from("/usr/bin/redis-cli")])
            .ok_or("redis-cli not found (Debian package redis-tools)")?;
        let mut command = Command::new(client);
        command
            .args(["-h", HOST, "-p", &self.port.to_string(), "--no-raw"])
            .args(args)
            .env_clear()
            .env("REDISCLI_AUTH", &self.password);
        let reply = host::run_client(&mut command)?;
        // redis-cli exits 0 on an error reply; it prints it as `(error) ...`.
        match reply.strip_prefix("(error) ") {
            Some(error) => Err(error.to_owned()),
            None => Ok(reply.trim_matches('"').to_owned()),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The directory holding its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Starts `redis-server` on `port` (and with TLS on the port given with the certificates) and
/// waits until it accepts connections.
fn launch(
    server: &Path,
    dir: &Path,
    password: &str,
    acl_password: &str,
    port: u16,
    tls: Option<(u16, &TlsFiles)>,
) -> Result<(ServerProcess, u16), StartError> {
    let mut command = Command::new(server);
    command
        .args(["--port", &port.to_string(), "--bind", HOST])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--requirepass", password])
        .args(["--user", Redis::ACL_USER, "on"])
        .arg(format!(">{acl_password}"))
        .args(["~*", "&*", "+@all"]);
    // https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/
    if let Some((tls_port, files)) = tls {
        command
            .args(["--tls-port", &tls_port.to_string()])
            .arg("--tls-cert-file")
            .arg(&files.server_cert)
            .arg("--tls-key-file")
            .arg(&files.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&files.ca)
            .args(["--tls-auth-clients", "no"]);
    }
    let log = dir.join("redis.log");
    let mut process = ServerProcess::spawn(SERVER, command, &log, Signal::SIGTERM, dir)?;
    process.wait_ready(|log| log.contains("Ready to accept connections"))?;
    Ok((process, port))
}
