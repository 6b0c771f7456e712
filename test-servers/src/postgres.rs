//! PostgreSQL (Debian's `postgresql`, 15): a fresh cluster made by `initdb` in a temporary
//! directory, password authentication (SCRAM) for every connection, listening on a free
//! loopback port (or one chosen by the test), run as `postgres` when the tests run as root;
//! optionally with TLS, its certificate signed by a fresh CA.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::signal::Signal;

use crate::host::{self, HOST, RunAs};
use crate::process::ServerProcess;
use crate::{StartError, or_skip, owned_or_skip};

const SERVER: &str = "PostgreSQL";

/// A running PostgreSQL server. Dropping an owned one ([`Postgres::start`]) stops it; the shared
/// one ([`postgres()`]) stops when the test binary ends.
///
/// # Examples
///
/// ```no_run
/// let Some(pg) = test_servers::postgres() else { return }; // skipped: not installed
/// let url = pg.create_database("orders");
/// assert!(url.starts_with("postgres://postgres:"));
/// assert_eq!(pg.query("orders", "SELECT 1 + 1").unwrap(), "2");
/// ```
#[derive(Debug)]
pub struct Postgres {
    // Declared before `dir`: the server stops before its directory is removed.
    process: ServerProcess,
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    ca_file: Option<PathBuf>,
}

/// The PostgreSQL server shared by every test of this test binary, started on first use; `None`
/// (after one line naming the install command) when PostgreSQL is not installed.
///
/// # Panics
///
/// When PostgreSQL is installed but does not start (the panic shows its log), or is missing
/// under CI (`CI=true`).
pub fn postgres() -> Option<&'static Postgres> {
    static SHARED: OnceLock<Result<Postgres, StartError>> = OnceLock::new();
    or_skip(SHARED.get_or_init(Postgres::try_start).as_ref())
}

impl Postgres {
    /// The superuser's name.
    pub const SUPERUSER: &'static str = "postgres";

    /// A private server for one test (isolation: restarts, settings, a server that goes away);
    /// `None` after one line when PostgreSQL is not installed. It stops when dropped.
    ///
    /// # Panics
    ///
    /// As [`postgres()`].
    pub fn start() -> Option<Self> {
        owned_or_skip(Self::try_start())
    }

    /// Starts a private server.
    ///
    /// # Errors
    ///
    /// [`StartError`] when PostgreSQL is not installed or does not start.
    pub fn try_start() -> Result<Self, StartError> {
        Self::try_start_with(None, None, false)
    }

    /// A private server listening on `port`, the superuser's password `password` (both chosen
    /// by the test, to start a server late where a client already waits); `None` after one line when PostgreSQL is not installed.
    ///
    /// # Panics
    ///
    /// As [`postgres()`], and when `port` is taken.
    pub fn start_on_port(port: u16, password: &str) -> Option<Self> {
        owned_or_skip(Self::try_start_with(Some(port), Some(password), false))
    }

    /// A private server that also accepts TLS (`ssl=on`), with a certificate for `127.0.0.1`
    /// and `localhost` signed by a fresh CA, [`Postgres::ca_file`]; `None` after one line when
    /// PostgreSQL is not installed.
    ///
    /// # Panics
    ///
    /// As [`postgres()`].
    pub fn start_tls() -> Option<Self> {
        owned_or_skip(Self::try_start_with(None, None, true))
    }

    fn try_start_with(
        port: Option<u16>,
        password: Option<&str>,
        tls: bool,
    ) -> Result<Self, StartError> {
        let bin = bin_dir()
            .ok_or_else(|| StartError::missing(SERVER, "initdb", "Debian package postgresql"))?;
        let run_as = RunAs::service(SERVER, "postgres")?;
        let dir = host::server_dir(SERVER, "initkit-postgres-", run_as)?;
        let password = password.map_or_else(|| host::random_secret("pg"), str::to_owned);
        let pwfile = dir.path().join("superuser-password");
        host::write_file(SERVER, &pwfile, &password, run_as)?;
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", Self::SUPERUSER, "--auth", "scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--encoding", "UTF8", "--locale", "C", "--no-sync"])
            .env_remove("PGDATA");
        run_as.apply(&mut initdb);
        crate::process::run_setup(SERVER, &mut initdb)?;
        let ca_file = if tls {
            Some(write_tls_files(dir.path(), &data, run_as)?)
        } else {
            None
        };
        let (process, port) = match port {
            Some(port) => launch(&bin, dir.path(), &data, run_as, port)?,
            None => host::retry_port_clash(|| {
                launch(&bin, dir.path(), &data, run_as, host::free_ports(1)[0])
            })?,
        };
        Ok(Self {
            process,
            dir,
            bin,
            port,
            password,
            ca_file,
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

    /// The superuser's name, [`Postgres::SUPERUSER`].
    pub fn user(&self) -> &str {
        Self::SUPERUSER
    }

    /// The superuser's password (fresh for each server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{HOST}:{}/{db}",
            Self::SUPERUSER,
            self.password,
            self.port
        )
    }

    /// Creates database `name` (dropping one of that name first) and returns its URL.
    ///
    /// # Panics
    ///
    /// When `psql` fails (the message is its stderr).
    pub fn create_database(&self, name: &str) -> String {
        let quoted = name.replace('"', "\"\"");
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{quoted}\""),
        ] {
            self.query("postgres", &sql)
                .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        }
        self.url(name)
    }

    /// Runs `sql` as the superuser in database `db` with `psql`; the rows unaligned, `|` between
    /// columns, one per line.
    ///
    /// # Errors
    ///
    /// `psql`'s stderr.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, String> {
        self.query_as(Self::SUPERUSER, &self.password, db, sql)
    }

    /// Runs `sql` in database `db` as `user` logging in with `password` over TCP (what a client
    /// given these credentials can do).
    ///
    /// # Errors
    ///
    /// `psql`'s stderr, e.g. `password authentication failed for user "..."`.
    pub fn query_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let psql = host::find_program("psql", &[self.bin.join("psql")])
            .ok_or("psql not found (Debian package postgresql-client)")?;
        let mut psql = Command::new(psql);
        psql.args(["--no-psqlrc", "--no-align", "--tuples-only", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1", "--host", HOST])
            .args([
                "--port",
                &self.port.to_string(),
                "--username",
                user,
                "--dbname",
                db,
            ])
            .args(["--command", sql])
            .env_clear()
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10");
        host::run_client(&mut psql)
    }

    /// The PEM file of the CA that signed the server's certificate ([`Postgres::start_tls`]);
    /// `None` for a server without TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The directory holding its data, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// Writes the CA and the server's certificate and key (mode 0600, the server's: PostgreSQL
/// refuses a key others can read) and turns TLS on in the cluster's configuration; the CA file.
fn write_tls_files(dir: &Path, data: &Path, run_as: RunAs) -> Result<PathBuf, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: String| StartError::failed(SERVER, format!("tls files: {e}"), "");
    let files = crate::tls::TlsFiles::write(dir).map_err(|e| failed(e.to_string()))?;
    std::fs::set_permissions(&files.server_key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| failed(e.to_string()))?;
    for path in [&files.server_cert, &files.server_key] {
        run_as.give(SERVER, path)?;
    }
    // https://www.postgresql.org/docs/15/ssl-tcp.html
    let settings = format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        files.server_cert.display(),
        files.server_key.display()
    );
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| failed(e.to_string()))?;
    text.push_str(&settings);
    std::fs::write(&conf, text).map_err(|e| failed(e.to_string()))?;
    Ok(files.ca)
}

/// Starts `postgres` on `port` and waits until it accepts connections.
fn launch(
    bin: &Path,
    dir: &Path,
    data: &Path,
    run_as: RunAs,
    port: u16,
) -> Result<(ServerProcess, u16), StartError> {
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            &format!("listen_addresses={HOST}"),
        ])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.display()))
        // A throwaway cluster: durability costs time and buys nothing.
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "max_connections=200"]);
    run_as.apply(&mut command);
    let log = dir.join("postgres.log");
    // SIGQUIT: immediate shutdown, the postmaster takes its backends down with it.
    let mut process = ServerProcess::spawn(SERVER, command, &log, Signal::SIGQUIT, dir)?;
    process.wait_ready(|log| log.contains("database system is ready to accept connections"))?;
    Ok((process, port))
}

/// The directory holding `initdb`, `postgres` and `psql`: Debian's newest
/// `/usr/lib/postgresql/<major>/bin`, else wherever `initdb` is on `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    debian.sort_by_key(|dir| {
        dir.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
    });
    let candidates: Vec<PathBuf> = debian.iter().rev().map(|dir| dir.join("initdb")).collect();
    let initdb = host::find_program("initdb", &candidates)?;
    initdb.parent().map(Path::to_path_buf)
}
