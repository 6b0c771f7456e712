//! What the database families share about where they connect and as whom: a password that
//! `Debug` never shows, where a user name or password comes from (code, the environment, a
//! published value), `host[:port]` addresses, the percent-decoding of URL parts and the checks
//! of a connection's TLS settings and timeout.

use std::fmt;
use std::time::Duration;

use init_core::{Context, Reference, StepError, ValuePath};

use super::db_tls::TlsMode;

/// A password: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(pub(crate) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// Where a user name or password comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Given in code (user names only).
    Literal(String),
    /// An environment variable of the plan's environment.
    Env(String),
    /// A published value (`db.password`).
    Value(ValuePath),
}

/// A user name or password from its source: `None` for a published value at validation.
pub(crate) fn lookup(
    what: &str,
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
    ctx: Option<&Context>,
) -> Result<Option<String>, StepError> {
    match source {
        Source::Literal(text) => Ok(Some(text.clone())),
        Source::Env(var) => env(var).map(Some).ok_or_else(|| {
            StepError::invalid(format!("{what}: environment variable {var} is not set"))
        }),
        Source::Value(path) => {
            path.check().map_err(|e| e.context(what))?;
            let Some(ctx) = ctx else { return Ok(None) };
            path.text(ctx).map(Some).map_err(|e| e.context(what))
        }
    }
}

/// What a connection reads: the environment variable of a URL (`url_env`), and the published
/// values or environment variables of its user name and password. The environment variables
/// are guarded: validation checks them itself, naming the step, and a second message would say
/// the same; they are declared for the dry run.
pub(crate) fn connection_reads(
    url_env: Option<&str>,
    user: Option<&Source>,
    password: Option<&Source>,
) -> Vec<Reference> {
    let mut reads = Vec::new();
    if let Some(var) = url_env {
        reads.push(Reference::env(var).at("url").guarded());
    }
    for (what, source) in [("user", user), ("password", password)] {
        match source {
            Some(Source::Env(var)) => reads.push(Reference::env(var).at(what).guarded()),
            Some(Source::Value(path)) if path.check().is_ok() => {
                reads.push(path.reference(what));
            }
            _ => {}
        }
    }
    reads
}

/// Checks a connection's transport settings: a CA file only with [`TlsMode::VerifyFull`], a
/// connect timeout above zero. The message does not name the step.
pub(crate) fn check_transport(
    tls: TlsMode,
    has_ca_file: bool,
    connect_timeout: Duration,
) -> Result<(), String> {
    if has_ca_file && tls != TlsMode::VerifyFull {
        return Err(format!(
            "a ca file needs tls mode verify-full, not {}",
            tls.as_str()
        ));
    }
    if connect_timeout.is_zero() {
        return Err("connect timeout 0s: expected a duration greater than zero".to_owned());
    }
    Ok(())
}

/// `host`, `host:port` or `[v6]:port`; `default_port` when none is given.
pub(crate) fn parse_address(input: &str, default_port: u16) -> Result<(String, u16), String> {
    const EXPECTED: &str = "expected host, host:port or [ipv6]:port";
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (ip, port) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {input:?}: {EXPECTED}"))?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("address {input:?}: {ip:?} is not an IPv6 address"))?;
        let port = match port.strip_prefix(':') {
            Some(port) => Some(port),
            None if port.is_empty() => None,
            None => return Err(format!("address {input:?}: {EXPECTED}")),
        };
        (ip.to_string(), port)
    } else {
        match input.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return Err(format!(
                    "address {input:?}: an IPv6 address needs brackets, as in [::1]:{default_port}"
                ));
            }
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (input.to_owned(), None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !valid_host {
        return Err(format!(
            "address {input:?}: host {host:?}: expected a host name or an IP address"
        ));
    }
    let port = match port {
        Some(port) => parse_port(port).map_err(|m| format!("address {input:?}: {m}"))?,
        None => default_port,
    };
    Ok((host, port))
}

pub(crate) fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(number),
        _ => Err(format!("port {port:?}: expected a number from 1 to 65535")),
    }
}

pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Percent-decodes one part of a URL (UTF-8); the error names the part, never its text.
pub(crate) fn decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("url {what}: a % not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("url {what}: not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_optional_port_and_bracketed_ipv6() {
        assert_eq!(parse_address("db", 5432), Ok(("db".into(), 5432)));
        assert_eq!(parse_address("db:6432", 5432), Ok(("db".into(), 6432)));
        assert_eq!(parse_address("db", 3306), Ok(("db".into(), 3306)));
        assert_eq!(parse_address("[::1]:1", 5432), Ok(("::1".into(), 1)));
        assert_eq!(parse_address("[::1]", 5432), Ok(("::1".into(), 5432)));
        for (bad, expected) in [
            ("db:0", "port \"0\""),
            ("::1:5432", "needs brackets, as in [::1]:3306"),
            ("", "host \"\""),
            ("d b:1", "host \"d b\""),
            ("[db]:1", "is not an IPv6 address"),
        ] {
            let err = parse_address(bad, 3306).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn url_parts_are_percent_decoded_and_errors_name_the_part_only() {
        assert_eq!(decode("p%2Fss%40x", "password"), Ok("p/ss@x".to_owned()));
        let err = decode("hunter%zz", "password").unwrap_err();
        assert_eq!(err, "url password: a % not followed by two hex digits");
        assert_eq!(
            decode("%ff", "user name").unwrap_err(),
            "url user name: not UTF-8 once decoded"
        );
    }
}
