//! `wait_for`: waits until TCP ports accept, HTTP endpoints answer and files appear; usable as
//! an init container as it is.
//!
//! ```text
//! wait_for [--timeout 30s] TARGET...
//!
//! TARGET  tcp://host:port, host:port or [ipv6]:port   the port accepts a connection
//!         http://... or https://...                   the URL answers 2xx (no redirects followed)
//!         file:///path                                the path exists
//! ```
//!
//! Every target is waited for at once. Exit codes: 0 when every target is ready, 1 when one
//! cannot become ready (a TLS certificate that does not verify, say), 2 for bad usage or a bad
//! target, 124 when `--timeout` runs out, 130/143 on SIGINT/SIGTERM. Logging, the JSON report
//! and the termination message follow `INITKIT_*` as in [`Plan::run_main`].
//!
//! Build it with the `tcp` feature alone for the smallest binary (TCP targets only):
//! `cargo build --release --example wait_for --no-default-features --features tcp`.

use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "fs")]
use initkit::FileWait;
#[cfg(feature = "http")]
use initkit::HttpWait;
use initkit::TcpWait;
use initkit::prelude::*;

const USAGE: &str = "\
usage: wait_for [--timeout DURATION] TARGET...

Waits until every TARGET is ready, all at once:
  tcp://host:port, host:port, [ipv6]:port   the port accepts a TCP connection
  http://URL, https://URL                   the URL answers with a 2xx status
  file:///path                              the path exists

Options:
  -t, --timeout DURATION   give up after DURATION (500ms, 30s, 5m, 1h; a bare number is
                           seconds) and exit 124; default: wait forever
  -h, --help               print this help

Exit codes: 0 ready, 1 failed, 2 bad usage or target, 124 timed out, 130/143 interrupted.";

/// What the command line asks for.
#[derive(Debug)]
struct Args {
    timeout: Option<Duration>,
    targets: Vec<String>,
}

/// Why the command line was refused.
#[derive(Debug)]
enum Usage {
    Help,
    Error(String),
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, Usage> {
    let mut timeout = None;
    let mut targets = Vec::new();
    let mut args = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            targets.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "--" => options_done = true,
            "-h" | "--help" => return Err(Usage::Help),
            "-t" | "--timeout" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or_else(|| Usage::Error(format!("{flag}: expected a duration")))?;
                timeout = Some(parse_duration(&value).map_err(Usage::Error)?);
            }
            _ => return Err(Usage::Error(format!("unknown option {arg:?}"))),
        }
    }
    if targets.is_empty() {
        return Err(Usage::Error("expected at least one TARGET".to_owned()));
    }
    Ok(Args { timeout, targets })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(n) if scale.is_finite() && n > 0.0 && (n * scale) < 1e9 => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!(
            "timeout {text:?}: expected a duration greater than zero, such as 500ms, 30s, 5m or 1h"
        )),
    }
}

fn step_for(target: &str) -> Result<Box<dyn Step>, String> {
    let scheme = target
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        None | Some("tcp") => Ok(TcpWait::new(target).boxed()),
        #[cfg(feature = "http")]
        Some("http" | "https") => Ok(HttpWait::get(target).boxed()),
        #[cfg(feature = "fs")]
        Some("file") => Ok(FileWait::new(&target["file://".len()..]).boxed()),
        #[cfg(not(feature = "http"))]
        Some("http" | "https") => Err(format!(
            "{target}: this build of wait_for has no HTTP support (the `http` feature)"
        )),
        #[cfg(not(feature = "fs"))]
        Some("file") => Err(format!(
            "{target}: this build of wait_for has no file support (the `fs` feature)"
        )),
        Some(other) => Err(format!(
            "{target}: unknown scheme {other:?}: expected tcp://, http://, https:// or file://"
        )),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(Usage::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage::Error(message)) => return usage_error(&message),
    };
    let steps = match args
        .targets
        .iter()
        .map(|t| step_for(t))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(steps) => steps,
        Err(message) => return usage_error(&message),
    };
    let mut plan = Plan::new("wait_for").concurrently(steps);
    if let Some(timeout) = args.timeout {
        plan = plan.with_deadline(timeout);
    }
    plan.run_main()
}

fn usage_error(message: &str) -> ExitCode {
    let synopsis = USAGE.lines().next().unwrap_or_default();
    eprintln!("wait_for: {message}\n{synopsis}\n(wait_for --help explains targets and exit codes)");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, Usage> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_timeout_forms_and_targets() {
        let parsed = args(&["--timeout", "30s", "db:5432", "tcp://cache:6379"]).unwrap();
        assert_eq!(parsed.timeout, Some(Duration::from_secs(30)));
        assert_eq!(parsed.targets, ["db:5432", "tcp://cache:6379"]);
        assert_eq!(
            args(&["-t", "500ms", "db:1"]).unwrap().timeout,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            args(&["--timeout=2m", "db:1"]).unwrap().timeout,
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            args(&["db:1", "-t", "1.5"]).unwrap().timeout,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(args(&["--", "-odd:1"]).unwrap().targets, ["-odd:1"]);
        assert_eq!(args(&["db:1"]).unwrap().timeout, None);
    }

    #[test]
    fn refuses_bad_usage_with_a_message() {
        let error = |list: &[&str]| match args(list) {
            Err(Usage::Error(message)) => message,
            other => panic!("{list:?}: {other:?}"),
        };
        assert_eq!(error(&[]), "expected at least one TARGET");
        assert_eq!(error(&["--timeout"]), "--timeout: expected a duration");
        assert!(error(&["-t", "0s", "db:1"]).starts_with("timeout \"0s\": expected a duration"));
        assert!(error(&["-t", "5d", "db:1"]).starts_with("timeout \"5d\""));
        assert_eq!(error(&["--wait", "db:1"]), "unknown option \"--wait\"");
        assert!(matches!(args(&["-h"]), Err(Usage::Help)));
    }

    #[test]
    fn maps_schemes_to_steps() {
        assert_eq!(step_for("db:5432").unwrap().name(), "tcp db:5432");
        assert_eq!(step_for("TCP://db:5432").unwrap().name(), "tcp db:5432");
        let Err(message) = step_for("udp://db:53") else {
            panic!("udp:// is not a target");
        };
        assert!(message.contains("unknown scheme \"udp\""), "{message}");
        #[cfg(feature = "http")]
        assert_eq!(
            step_for("http://app/health").unwrap().name(),
            "GET http://app/health"
        );
        #[cfg(feature = "fs")]
        assert_eq!(
            step_for("file:///shared/ready").unwrap().name(),
            "file /shared/ready"
        );
    }
}
