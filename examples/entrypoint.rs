//! An init binary for two deployments: a Kubernetes init container (it runs its plan and exits),
//! or a Docker entrypoint wrapper (it runs its plan, then `exec`s the real program).
//!
//! ```text
//! entrypoint [--timeout SECONDS] [--wait HOST:PORT]... [--render TEMPLATE=DEST]... [-- PROGRAM ARGS...]
//! ```
//!
//! - `--wait HOST:PORT`: waits until every listed port accepts connections (all at once).
//! - `--render TEMPLATE=DEST`: renders a minijinja template (it sees `{{ env.NAME }}`) into
//!   `DEST`, atomically.
//! - `--timeout SECONDS`: the plan's deadline (exit code 124 when it runs out).
//! - `-- PROGRAM ARGS...`: after the plan succeeded, replaces this process with `PROGRAM`
//!   (`execve`, looked up in `PATH`): the program keeps the PID (PID 1 in a container), the
//!   environment, and owns the signals and the exit code, as with dockerize. Without it, the
//!   binary exits 0 when the plan succeeded: an init container.
//!
//! ```text
//! cargo run --example entrypoint --features tcp,template -- \
//!     --wait localhost:5432 --render app.toml.j2=/tmp/app.toml -- cat /tmp/app.toml
//! ```
//!
//! Exit codes: as `run_main` (0, 1, 2 for a bad command line or plan, 124, 130/143), then the
//! program's own; 127 when it is not found, 126 when it cannot be executed.
//! `INITKIT_DRY_RUN=1` validates the command line and the plan and prints the plan.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use initkit::Render;
use initkit::TcpWait;
use initkit::prelude::*;

const USAGE: &str = "usage: entrypoint [--timeout SECONDS] [--wait HOST:PORT]... [--render TEMPLATE=DEST]... [-- PROGRAM ARGS...]";

/// The command line.
#[derive(Debug, Default)]
struct Args {
    timeout: Option<Duration>,
    waits: Vec<String>,
    renders: Vec<(PathBuf, PathBuf)>,
    exec: Option<Vec<OsString>>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        while let Some(arg) = args.next() {
            if arg == "--" {
                parsed.exec = Some(args.collect());
                break;
            }
            let flag = arg.to_string_lossy().into_owned();
            let mut value = || {
                args.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{flag}: expected a value"))
            };
            match flag.as_str() {
                "--wait" => parsed.waits.push(value()?),
                "--render" => {
                    let value = value()?;
                    let (src, dest) = value
                        .split_once('=')
                        .filter(|(s, d)| !s.is_empty() && !d.is_empty())
                        .ok_or_else(|| format!("--render {value:?}: expected TEMPLATE=DEST"))?;
                    parsed.renders.push((src.into(), dest.into()));
                }
                "--timeout" => {
                    let value = value()?;
                    let secs: u64 = value.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                        format!("--timeout {value:?}: expected a whole number of seconds")
                    })?;
                    parsed.timeout = Some(Duration::from_secs(secs));
                }
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        Ok(parsed)
    }

    fn plan(&self) -> Plan {
        let mut plan = Plan::new("entrypoint");
        if let Some(deadline) = self.timeout {
            plan = plan.with_deadline(deadline);
        }
        if !self.waits.is_empty() {
            plan = plan.step(TcpWait::all(self.waits.iter().cloned()));
        }
        for (src, dest) in &self.renders {
            plan = plan.step(Render::file(src, dest));
        }
        plan
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("entrypoint: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let plan = args.plan();
    match args.exec {
        Some(argv) => plan.run_main_then_exec(argv),
        None => plan.run_main(),
    }
}
