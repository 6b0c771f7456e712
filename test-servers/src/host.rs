//! What the servers need from this machine: free loopback ports, the programs (Debian's
//! packages, the OpenBao wheel in the workspace's virtualenv), the unprivileged user a server
//! runs as when the tests run as root, and fresh secrets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User};

use crate::StartError;

/// The loopback address every server listens on.
pub const HOST: &str = "127.0.0.1";

/// Where `scripts/test-all.sh` puts the Python tools (the OpenBao wheel, kubernetes-validate).
pub(crate) fn tools_dir() -> PathBuf {
    std::env::var_os("INITKIT_TEST_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-tools"),
        PathBuf::from,
    )
}

/// `count` distinct free TCP ports on loopback. Another process may take one before the server
/// binds it; the servers retry on another port when that happens.
pub(crate) fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind((HOST, 0)).expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

/// A free port `p` whose neighbour `p + 1` is free too (OpenBao's dev listener takes the next
/// port for its cluster listener).
pub(crate) fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind((HOST, 0)).expect("bind a loopback port");
        let port = first.local_addr().expect("a bound address").port();
        if port < u16::MAX && TcpListener::bind((HOST, port + 1)).is_ok() {
            return port;
        }
    }
}

/// The first of `candidates` that is an executable file, else `name` found on `PATH`.
pub(crate) fn find_program(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .collect()
        })
        .unwrap_or_default();
    candidates
        .iter()
        .chain(on_path.iter())
        .find(|path| is_executable(path))
        .cloned()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The account a server runs as: `None` (the current user) unless the tests run as root, where
/// PostgreSQL and MariaDB refuse to run; then the package's own account `name`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs(Option<(Uid, Gid)>);

impl RunAs {
    /// The account for `server`: the current user, or `name` when running as root.
    pub(crate) fn service(server: &'static str, name: &str) -> Result<Self, StartError> {
        if !Uid::effective().is_root() {
            return Ok(Self(None));
        }
        match User::from_name(name) {
            Ok(Some(user)) => Ok(Self(Some((user.uid, user.gid)))),
            _ => Err(StartError::missing(
                server,
                &format!("user {name}"),
                "its Debian package creates it",
            )),
        }
    }

    /// The current user.
    pub(crate) const fn current() -> Self {
        Self(None)
    }

    /// Makes `path` the account's (a no-op for the current user).
    pub(crate) fn give(self, server: &'static str, path: &Path) -> Result<(), StartError> {
        if let Some((uid, gid)) = self.0 {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).map_err(
                |e| StartError::failed(server, format!("chown {}: {e}", path.display()), ""),
            )?;
        }
        Ok(())
    }

    /// Makes `command` run as the account.
    pub(crate) fn apply(self, command: &mut Command) {
        if let Some((uid, gid)) = self.0 {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }
}

/// A fresh random secret of 24 hex digits (URL- and shell-safe), so no test can depend on it.
pub(crate) fn random_secret(prefix: &str) -> String {
    let mut hex = String::new();
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .as_nanos(),
        );
        hex.push_str(&format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff));
    }
    format!("{prefix}-{hex}")
}

/// A temporary directory for one server, given to the account it runs as.
pub(crate) fn server_dir(
    server: &'static str,
    prefix: &str,
    run_as: RunAs,
) -> Result<tempfile::TempDir, StartError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| StartError::failed(server, format!("temporary directory: {e}"), ""))?;
    run_as.give(server, dir.path())?;
    Ok(dir)
}

/// Writes `contents` to `path`, owned by the account.
pub(crate) fn write_file(
    server: &'static str,
    path: &Path,
    contents: &str,
    run_as: RunAs,
) -> Result<(), StartError> {
    std::fs::write(path, contents)
        .map_err(|e| StartError::failed(server, format!("{}: {e}", path.display()), ""))?;
    run_as.give(server, path)
}

/// Runs `start` up to three times while it fails because another process took its port.
pub(crate) fn retry_port_clash<T>(
    mut start: impl FnMut() -> Result<T, StartError>,
) -> Result<T, StartError> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(error) if error.is_port_clash() && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

/// Runs a server's command-line client to completion: its trimmed stdout, or its stderr as the
/// error.
pub(crate) fn run_client(command: &mut Command) -> Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{program} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
