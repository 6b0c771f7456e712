//! A `TcpWait` target: `host:port`, `tcp://host:port` or `[ipv6]:port`, parsed into a host and a
//! port, or into what was expected instead.

use std::net::{IpAddr, Ipv6Addr};

/// One target as given, and what it parsed into (or what was expected instead).
#[derive(Debug)]
pub(super) struct Target {
    input: String,
    pub(super) address: Result<Address, String>,
}

impl Target {
    pub(super) fn parse(input: String) -> Self {
        let address = Address::parse(&input);
        Self { input, address }
    }

    pub(super) fn display(&self) -> &str {
        match &self.address {
            Ok(address) => &address.display,
            Err(_) => &self.input,
        }
    }

    pub(super) fn describe_error(&self, expected: &str) -> String {
        format!("tcp target {:?}: {expected}", self.input)
    }
}

/// A parsed `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Address {
    pub(super) host: Host,
    pub(super) port: u16,
    /// `host:port`, `[v6]:port`: how messages name the target.
    pub(super) display: String,
}

/// A target's host: an IP address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Host {
    Ip(IpAddr),
    Name(String),
}

const EXPECTED_FORM: &str = "expected host:port, tcp://host:port or [ipv6]:port";

impl Address {
    /// Parses `host:port`, `tcp://host:port` or `[ipv6]:port`; the error says what was expected.
    fn parse(input: &str) -> Result<Self, String> {
        let rest = match input.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("tcp") => rest,
            Some((scheme, _)) => {
                return Err(format!("scheme {scheme:?}: {EXPECTED_FORM}"));
            }
            None => input,
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (ip, port) = bracketed
                .split_once("]:")
                .ok_or_else(|| EXPECTED_FORM.to_owned())?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| format!("{ip:?} in brackets: expected an IPv6 address"))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| EXPECTED_FORM.to_owned())?;
            if host.contains(':') {
                return Err(format!(
                    "{host:?}: an IPv6 address needs brackets, as in [::1]:5432"
                ));
            }
            (parse_host(host)?, port)
        };
        let port = match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => number,
            _ => return Err(format!("port {port:?}: expected a number from 1 to 65535")),
        };
        let display = match host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            Host::Ip(IpAddr::V4(ip)) => format!("{ip}:{port}"),
            Host::Name(ref name) => format!("{name}:{port}"),
        };
        Ok(Self {
            host,
            port,
            display,
        })
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // A trailing dot (a fully qualified name) is allowed.
    let labels = host.strip_suffix('.').unwrap_or(host);
    let valid = !labels.is_empty()
        && host.len() <= 253
        && labels.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(Host::Name(host.to_owned()))
    } else {
        Err(format!(
            "host {host:?}: expected a host name or an IP address"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> Address {
        Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    #[test]
    fn parses_host_port_scheme_and_bracketed_ipv6() {
        let pg = parsed("postgres:5432");
        assert_eq!(pg.host, Host::Name("postgres".into()));
        assert_eq!(pg.port, 5432);
        assert_eq!(parsed("tcp://postgres:5432"), pg);
        assert_eq!(parsed("TCP://postgres:5432"), pg);
        assert_eq!(parsed("[::1]:5432").display, "[::1]:5432");
        assert_eq!(parsed("[::1]:5432").host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(
            parsed("127.0.0.1:80").host,
            Host::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parsed("db.ns.svc.cluster.local.:5432").display,
            "db.ns.svc.cluster.local.:5432"
        );
        assert_eq!(parsed("my_host-1:1").port, 1);
        assert_eq!(parsed("h:65535").port, 65535);
    }

    #[test]
    fn refuses_bad_targets_saying_what_was_expected() {
        let cases = [
            ("postgres", "expected host:port"),
            ("postgres:", "port \"\": expected a number from 1 to 65535"),
            ("postgres:0", "port \"0\""),
            ("postgres:65536", "port \"65536\""),
            ("postgres:+5432", "port \"+5432\""),
            ("postgres:54x", "port \"54x\""),
            (":5432", "host \"\": expected a host name or an IP address"),
            ("http://postgres:5432", "scheme \"http\""),
            ("tcp://postgres:5432/db", "port \"5432/db\""),
            ("::1:5432", "an IPv6 address needs brackets"),
            ("[::1]", "expected host:port"),
            ("[localhost]:80", "expected an IPv6 address"),
            ("post gres:5432", "host \"post gres\""),
            ("a..b:1", "host \"a..b\""),
        ];
        for (input, expected) in cases {
            let err = Address::parse(input).unwrap_err();
            assert!(
                err.contains(expected),
                "{input}: {err:?} lacks {expected:?}"
            );
        }
    }
}
