//! MariaDB (Debian's `mariadb-server`, 10.11): a fresh data directory made by
//! `mariadb-install-db`, `root` with a password over TCP, listening on a free loopback port (or
//! one chosen by the test), optionally with TLS, run as `mysql` when the tests run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::signal::Signal;

use crate::host::{self, HOST, RunAs};
use crate::process::ServerProcess;
use crate::tls::TlsFiles;
use crate::{StartError, or_skip, owned_or_skip};

const SERVER: &str = "MariaDB";

/// A running MariaDB server. Dropping an owned one ([`MariaDb::start`]) stops it; the shared
/// one ([`mariadb()`]) stops when the test binary ends.
///
/// # Examples
///
/// ```no_run
/// let Some(db) = test_servers::mariadb() else { return }; // skipped: not installed
/// let url = db.create_database("orders");
/// assert!(url.starts_with("mysql://root:"));
/// assert_eq!(db.query("orders", "SELECT 1 + 1").unwrap(), "2");
/// ```
#[derive(Debug)]
pub struct MariaDb {
    // Declared before `dir`: the server stops before its directory is removed.
    process: ServerProcess,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    ca_file: Option<PathBuf>,
}

/// The MariaDB server shared by every test of this test binary, started on first use; `None`
/// (after one line naming the install command) when MariaDB is not installed.
///
/// # Panics
///
/// When MariaDB is installed but does not start (the panic shows its log), or is missing under
/// CI (`CI=true`).
pub fn mariadb() -> Option<&'static MariaDb> {
    static SHARED: OnceLock<Result<MariaDb, StartError>> = OnceLock::new();
    or_skip(SHARED.get_or_init(MariaDb::try_start).as_ref())
}

impl MariaDb {
    /// The superuser's name.
    pub const SUPERUSER: &'static str = "root";

    /// A private server for one test; `None` after one line when MariaDB is not installed. It
    /// stops when dropped.
    ///
    /// # Panics
    ///
    /// As [`mariadb()`].
    pub fn start() -> Option<Self> {
        owned_or_skip(Self::try_start())
    }

    /// Starts a private server.
    ///
    /// # Errors
    ///
    /// [`StartError`] when MariaDB is not installed or does not start.
    pub fn try_start() -> Result<Self, StartError> {
        Self::try_start_with(None, None, false)
    }

    /// A private server listening on `port`, `root`'s password `password` (both chosen by the
    /// test, to start a server late where a client already waits); `None` after one line when
    /// MariaDB is not installed.
    ///
    /// # Panics
    ///
    /// As [`mariadb()`], and when `port` is taken.
    pub fn start_on_port(port: u16, password: &str) -> Option<Self> {
        owned_or_skip(Self::try_start_with(Some(port), Some(password), false))
    }

    /// A private server that also accepts TLS, with a certificate for `127.0.0.1` and
    /// `localhost` signed by a fresh CA, [`MariaDb::ca_file`]; `None` after one line when
    /// MariaDB is not installed.
    ///
    /// # Panics
    ///
    /// As [`mariadb()`].
    pub fn start_tls() -> Option<Self> {
        owned_or_skip(Self::try_start_with(None, None, true))
    }

    fn try_start_with(
        port: Option<u16>,
        password: Option<&str>,
        tls: bool,
    ) -> Result<Self, StartError> {
        let missing = || StartError::missing(SERVER, "mariadbd", "Debian package mariadb-server");
        let server = host::find_program("mariadbd", &[PathBuf::from("/usr/sbin/mariadbd")])
            .ok_or_else(missing)?;
        let install = host::find_program("mariadb-install-db", &[]).ok_or_else(missing)?;
        let run_as = RunAs::service(SERVER, "mysql")?;
        let dir = host::server_dir(SERVER, "initkit-mariadb-", run_as)?;
        let data = dir.path().join("data");
        let mut install_db = Command::new(install);
        install_db
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg("--skip-name-resolve");
        run_as.apply(&mut install_db);
        crate::process::run_setup(SERVER, &mut install_db)?;
        let password = password.map_or_else(|| host::random_secret("maria"), str::to_owned);
        // Run at start-up, before the server accepts connections: `mariadb-install-db` leaves
        // `root` without a password on 127.0.0.1 and ::1.
        let init = dir.path().join("init.sql");
        let sql = format!(
            "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{password}';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n\
             ALTER USER 'root'@'localhost' IDENTIFIED BY '{password}';\n\
             DROP USER IF EXISTS 'root'@'::1';\n\
             FLUSH PRIVILEGES;\n"
        );
        host::write_file(SERVER, &init, &sql, run_as)?;
        let tls = if tls {
            Some(write_tls_files(dir.path(), run_as)?)
        } else {
            None
        };
        let start = |port| {
            launch(
                &server,
                dir.path(),
                &data,
                &init,
                tls.as_ref(),
                run_as,
                port,
            )
        };
        let (process, port) = match port {
            Some(port) => start(port)?,
            None => host::retry_port_clash(|| start(host::free_ports(1)[0]))?,
        };
        Ok(Self {
            process,
            dir,
            port,
            password,
            ca_file: tls.map(|files| files.ca),
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

    /// The superuser's name, [`MariaDb::SUPERUSER`].
    pub fn user(&self) -> &str {
        Self::SUPERUSER
    }

    /// The superuser's password (fresh for each server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `mysql://root:<password>@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "mysql://{}:{}@{HOST}:{}/{db}",
            Self::SUPERUSER,
            self.password,
            self.port
        )
    }

    /// Creates database `name` (dropping one of that name first) and returns its URL.
    ///
    /// # Panics
    ///
    /// When the `mariadb` client fails (the message is its stderr).
    pub fn create_database(&self, name: &str) -> String {
        let quoted = name.replace('`', "``");
        let sql = format!("DROP DATABASE IF EXISTS `{quoted}`; CREATE DATABASE `{quoted}`");
        self.query("mysql", &sql)
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        self.url(name)
    }

    /// Runs `sql` as `root` in database `db` with the `mariadb` client; rows tab-separated, one
    /// per line, no column names.
    ///
    /// # Errors
    ///
    /// The client's stderr.
    pub fn query(&self, db: &str, sql: &str) -> Result<String, String> {
        self.query_as(Self::SUPERUSER, &self.password, db, sql)
    }

    /// Runs `sql` in database `db` as `user` logging in with `password` over TCP.
    ///
    /// # Errors
    ///
    /// The client's stderr, e.g. `Access denied for user ...`.
    pub fn query_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let client = host::find_program("mariadb", &[])
            .ok_or("mariadb client not found (Debian package mariadb-client)")?;
        let mut command = Command::new(client);
        command
            .args([
                "--no-defaults",
                "--batch",
                "--skip-column-names",
                "--protocol=TCP",
            ])
            .args([
                "--host",
                HOST,
                "--port",
                &self.port.to_string(),
                "--user",
                user,
            ])
            .args(["--database", db, "--execute", sql])
            .env_clear()
            .env("MYSQL_PWD", password);
        host::run_client(&mut command)
    }

    /// The PEM file of the CA that signed the server's certificate ([`MariaDb::start_tls`]);
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

/// Writes the CA and the server's certificate and key, readable by the server's account.
fn write_tls_files(dir: &Path, run_as: RunAs) -> Result<TlsFiles, StartError> {
    let files = TlsFiles::write(dir)
        .map_err(|e| StartError::failed(SERVER, format!("tls files: {e}"), ""))?;
    for path in [&files.ca, &files.server_cert, &files.server_key] {
        run_as.give(SERVER, path)?;
    }
    Ok(files)
}

/// Starts `mariadbd` on `port` and waits until it accepts connections.
fn launch(
    server: &Path,
    dir: &Path,
    data: &Path,
    init: &Path,
    tls: Option<&TlsFiles>,
    run_as: RunAs,
    port: u16,
) -> Result<(ServerProcess, u16), StartError> {
    let mut command = Command::new(server);
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--bind-address={HOST}"))
        .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
        .arg(format!("--init-file={}", init.display()))
        .arg("--skip-name-resolve")
        // A throwaway server: durability costs time and buys nothing.
        .args([
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=32M",
        ])
        .arg("--max-connections=200");
    // https://mariadb.com/kb/en/securing-connections-for-client-and-server/
    if let Some(files) = tls {
        command
            .arg(format!("--ssl-ca={}", files.ca.display()))
            .arg(format!("--ssl-cert={}", files.server_cert.display()))
            .arg(format!("--ssl-key={}", files.server_key.display()));
    }
    run_as.apply(&mut command);
    let log = dir.join("mariadb.log");
    let mut process = ServerProcess::spawn(SERVER, command, &log, Signal::SIGTERM, dir)?;
    process.wait_ready(|log| log.contains("ready for connections"))?;
    Ok((process, port))
}
