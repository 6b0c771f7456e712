//! `TcpWait`: waits until one or more TCP ports accept connections.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use init_core::{Context, Policy, Publication, Step, StepError, ValidateContext, async_trait};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a successful name lookup is reused. A refused port is polled at the wait cadence
/// (every 10 to 100 ms); looking its name up again each time would send the cluster DNS up to
/// ~100 queries a second per replica (100 000 for a thousand replicas), so a lookup is repeated at most once a second, and a
/// changed address is still noticed within a second.
const RESOLVE_REUSE: Duration = Duration::from_secs(1);

/// The default bound on one connection attempt to one address.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Waits until every target accepts a TCP connection.
///
/// A target is `host:port`, `tcp://host:port` or `[ipv6]:port`. Each attempt tries every target
/// that has not accepted yet, all at once; a host name is resolved again on every attempt (a
/// Kubernetes service may get its address late, or a new one), except that a successful lookup
/// is reused for up to a second while the port is polled quickly, so that polling does not
/// flood the cluster DNS. Every address a name resolves to is tried at once: the first that
/// accepts makes the target ready. A connection that is
/// accepted is closed at once; nothing is sent.
///
/// A target that accepted once counts as ready for the rest of the step, so a database is not
/// sent a connection every few milliseconds while another target is still down. When every
/// target is ready the step succeeds and forgets them, so running the same step again checks
/// everything again.
///
/// # Cadence and errors
///
/// Failures are transient: the executor tries again, and the error names the pending target and
/// why (`postgres:5432: connection refused`).
///
/// - When every pending target was resolved and refused the connection (or reset it), the next
///   attempt comes at the wait cadence ([`StepError::with_wait_cadence`]: every 10 ms at
///   first, growing with the time waited to 100 ms): a port that opens is noticed within
///   milliseconds to tens of milliseconds.
/// - A name that does not resolve (yet), an address that is unreachable, or a connection that
///   times out waits for the policy's backoff instead ([`Retry::wait`](init_core::Retry::wait):
///   100 ms growing to about 1 s), so that a thousand replicas do not flood the cluster DNS.
///
/// Targets in one `TcpWait` share that cadence; to poll one quickly while another backs off,
/// put them in separate steps of a [`Plan::concurrently`](init_core::Plan::concurrently) group.
///
/// # Default
///
/// Policy: [`Policy::wait`] (no attempt limit, 5 s attempt timeout: bound the wait with
/// [`StepExt::timeout`](init_core::StepExt::timeout) or the plan's deadline). Connect timeout
/// per address: 3 s, shorter than the attempt timeout so that the error says which target did
/// not answer. Name: `tcp ` followed by the targets, e.g. `tcp postgres:5432`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use init_core::prelude::*;
/// use init_steps::tcp::TcpWait;
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .concurrently([
///             TcpWait::new("postgres:5432").boxed(),
///             TcpWait::new("tcp://redis:6379").timeout(Duration::from_secs(60)).boxed(),
///         ])
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct TcpWait {
    name: String,
    targets: Vec<Target>,
    connect_timeout: Duration,
    /// `ready[i]`: target `i` accepted during the current run of the step.
    ready: Mutex<Vec<bool>>,
    /// `resolved[i]`: target `i`'s last successful lookup.
    resolved: Mutex<Vec<Option<Lookup>>>,
}

/// The addresses a name resolved to, and when.
#[derive(Debug, Clone)]
struct Lookup {
    addrs: Vec<SocketAddr>,
    at: Instant,
}

impl TcpWait {
    /// Waits for one target: `host:port`, `tcp://host:port` or `[ipv6]:port`.
    ///
    /// The target is checked by [`validate`](Step::validate), before the plan runs.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::new("tcp://postgres:5432");
    /// assert_eq!(wait.name(), "tcp postgres:5432");
    /// assert!(wait.validate(&init_core::ValidateContext::process()).is_ok());
    /// assert!(TcpWait::new("postgres").validate(&init_core::ValidateContext::process()).unwrap_err().is_invalid());
    /// ```
    pub fn new(target: impl Into<String>) -> Self {
        Self::all([target])
    }

    /// Waits until every one of `targets` accepts; they are tried at once.
    ///
    /// ```
    /// use init_core::Step;
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::all(["postgres:5432", "[::1]:6379"]);
    /// assert_eq!(wait.name(), "tcp postgres:5432 [::1]:6379");
    /// ```
    pub fn all<I, S>(targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let targets: Vec<Target> = targets
            .into_iter()
            .map(|t| Target::parse(t.into()))
            .collect();
        let name = std::iter::once("tcp")
            .chain(targets.iter().map(Target::display))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name,
            ready: Mutex::new(vec![false; targets.len()]),
            resolved: Mutex::new(vec![None; targets.len()]),
            targets,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Bounds one connection attempt to one address (3 s by default). A connection that takes
    /// longer counts as a transient failure, on the policy's backoff. Keep it below the
    /// policy's attempt timeout, or the attempt is cut before the error can name the target.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_steps::tcp::TcpWait;
    ///
    /// let wait = TcpWait::new("postgres:5432").with_connect_timeout(Duration::from_secs(1));
    /// assert_eq!(wait.connect_timeout(), Duration::from_secs(1));
    /// ```
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on one connection attempt to one address.
    ///
    /// ```
    /// use std::time::Duration;
    /// use init_steps::tcp::TcpWait;
    ///
    /// assert_eq!(TcpWait::new("postgres:5432").connect_timeout(), Duration::from_secs(3));
    /// ```
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    fn addresses(&self) -> Result<Vec<&Address>, StepError> {
        self.targets
            .iter()
            .map(|t| {
                t.address
                    .as_ref()
                    .map_err(|expected| StepError::invalid(t.describe_error(expected)))
            })
            .collect()
    }

    /// Target `index`'s addresses: the last lookup if it is younger than [`RESOLVE_REUSE`],
    /// otherwise a new one (remembered when it succeeds).
    async fn resolve_cached(
        &self,
        index: usize,
        address: &Address,
    ) -> Result<Vec<SocketAddr>, Failure> {
        let fresh = self.resolved.lock().unwrap_or_else(PoisonError::into_inner)[index]
            .as_ref()
            .filter(|lookup| lookup.at.elapsed() < RESOLVE_REUSE)
            .map(|lookup| lookup.addrs.clone());
        if let Some(addrs) = fresh {
            return Ok(addrs);
        }
        let addrs = resolve(address).await?;
        if matches!(address.host, Host::Name(_)) {
            self.resolved.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(Lookup {
                addrs: addrs.clone(),
                at: Instant::now(),
            });
        }
        Ok(addrs)
    }

    fn mark_ready(&self, index: usize) {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)[index] = true;
    }
}

#[async_trait]
impl Step for TcpWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        if self.targets.is_empty() {
            return Err(StepError::invalid(
                "tcp wait: expected at least one host:port target",
            ));
        }
        self.addresses()?;
        if self.connect_timeout.is_zero() {
            return Err(StepError::invalid(format!(
                "{}: connect timeout 0s: expected a duration greater than zero",
                self.name
            )));
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let addresses = self.addresses()?;
        let pending: Vec<usize> = {
            let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
            (0..addresses.len()).filter(|&i| !ready[i]).collect()
        };
        let mut checks: FuturesUnordered<_> = pending
            .into_iter()
            .map(|i| {
                let address = addresses[i];
                async move {
                    let result = match self.resolve_cached(i, address).await {
                        Ok(addrs) => {
                            connect_any(&address.display, &addrs, self.connect_timeout).await
                        }
                        Err(failure) => Err(failure),
                    };
                    (i, result)
                }
            })
            .collect();
        let mut failures = Vec::new();
        // Each target is marked as soon as it accepts, so an attempt cut short by its timeout
        // still keeps what it learned.
        while let Some((i, result)) = checks.next().await {
            match result {
                Ok(()) => self.mark_ready(i),
                Err(failure) => failures.push((i, failure)),
            }
        }
        if failures.is_empty() {
            self.ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fill(false);
            self.resolved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fill(None);
            return Ok(());
        }
        failures.sort_by_key(|(i, _)| *i);
        Err(combine(failures.into_iter().map(|(_, f)| f).collect()))
    }
}

/// One target as given, and what it parsed into (or what was expected instead).
#[derive(Debug)]
struct Target {
    input: String,
    address: Result<Address, String>,
}

impl Target {
    fn parse(input: String) -> Self {
        let address = Address::parse(&input);
        Self { input, address }
    }

    fn display(&self) -> &str {
        match &self.address {
            Ok(address) => &address.display,
            Err(_) => &self.input,
        }
    }

    fn describe_error(&self, expected: &str) -> String {
        format!("tcp target {:?}: {expected}", self.input)
    }
}

/// A parsed `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Address {
    host: Host,
    port: u16,
    /// `host:port`, `[v6]:port`: how messages name the target.
    display: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
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

/// Why one target (or one of its addresses) did not accept.
#[derive(Debug)]
struct Failure {
    /// `postgres:5432: connection refused`.
    error: StepError,
    /// Whether polling again soon is cheap and useful: the name resolved and every address
    /// refused the connection.
    fast: bool,
}

async fn resolve(address: &Address) -> Result<Vec<SocketAddr>, Failure> {
    let name = match &address.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, address.port)]),
        Host::Name(name) => name,
    };
    let not_resolved = |error: StepError| Failure { error, fast: false };
    let found = tokio::net::lookup_host((name.as_str(), address.port))
        .await
        .map_err(|e| {
            not_resolved(
                StepError::transient(format!("{}: cannot resolve {name}", address.display))
                    .with_source(e),
            )
        })?;
    let mut addrs = Vec::new();
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(not_resolved(StepError::transient(format!(
            "{}: {name} resolves to no address",
            address.display
        ))));
    }
    Ok(addrs)
}

/// Connects to every address at once; `Ok` as soon as one accepts (the connection is closed at
/// once), otherwise a failure that names `target` and, when the addresses failed differently,
/// each address.
async fn connect_any(
    target: &str,
    addrs: &[SocketAddr],
    connect_timeout: Duration,
) -> Result<(), Failure> {
    let mut tries: FuturesUnordered<_> = addrs
        .iter()
        .enumerate()
        .map(|(index, &addr)| async move {
            match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_stream)) => Ok(()),
                Ok(Err(err)) => Err(Reason {
                    index,
                    refused: matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ),
                    // `connection refused`: lowercase, without "(os error N)".
                    text: StepError::from_error(err).to_string(),
                }),
                Err(_) => Err(Reason {
                    index,
                    refused: false,
                    text: format!("no answer within {connect_timeout:?}"),
                }),
            }
        })
        .collect();
    let mut reasons = Vec::with_capacity(addrs.len());
    while let Some(result) = tries.next().await {
        match result {
            Ok(()) => return Ok(()),
            Err(reason) => reasons.push(reason),
        }
    }
    reasons.sort_by_key(|reason| reason.index);
    let fast = reasons.iter().all(|reason| reason.refused);
    let message = if reasons.windows(2).all(|w| w[0].text == w[1].text) {
        format!("{target}: {}", reasons[0].text)
    } else {
        let parts: Vec<String> = reasons
            .iter()
            .map(|reason| format!("{}: {}", addrs[reason.index], reason.text))
            .collect();
        format!("{target}: {}", parts.join("; "))
    };
    Err(Failure {
        error: StepError::transient(message),
        fast,
    })
}

/// Why the address at `index` did not accept.
struct Reason {
    index: usize,
    /// Refused or reset: cheap to poll again soon.
    refused: bool,
    text: String,
}

/// The error of one attempt from its targets' failures: transient, naming every pending
/// target, and asking for the fast retry only when every one of them was refused.
fn combine(mut failures: Vec<Failure>) -> StepError {
    let fast = failures.iter().all(|f| f.fast);
    let error = if failures.len() == 1 {
        failures.remove(0).error
    } else {
        let texts: Vec<String> = failures.iter().map(|f| f.error.to_string()).collect();
        StepError::transient(texts.join("; "))
    };
    if fast {
        error.with_wait_cadence()
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup_time(wait: &TcpWait) -> Option<Instant> {
        wait.resolved.lock().unwrap()[0].as_ref().map(|l| l.at)
    }

    #[tokio::test]
    async fn a_lookup_is_reused_for_a_second_while_the_port_refuses() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let wait = TcpWait::new(format!("localhost:{port}"));
        let ctx = Context::new();
        let refused = format!("localhost:{port}: connection refused");

        let err = wait.run(&ctx).await.unwrap_err();
        assert_eq!(err.to_string(), refused);
        assert!(err.at_wait_cadence());
        let first = lookup_time(&wait).expect("the lookup is remembered");
        assert_eq!(wait.run(&ctx).await.unwrap_err().to_string(), refused);
        assert_eq!(
            lookup_time(&wait),
            Some(first),
            "looked up again within a second"
        );

        tokio::time::sleep(RESOLVE_REUSE + Duration::from_millis(100)).await;
        assert_eq!(wait.run(&ctx).await.unwrap_err().to_string(), refused);
        assert!(
            lookup_time(&wait).unwrap() > first,
            "a lookup older than a second is repeated"
        );

        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(wait.run(&ctx).await.is_ok());
        assert_eq!(lookup_time(&wait), None, "success forgets the lookup");
        drop(listener);
    }

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

    /// Bound but not listening: connections to it are refused, and no one else gets the port.
    fn refused_addr(ip: &str) -> (tokio::net::TcpSocket, SocketAddr) {
        let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
        let socket = if addr.is_ipv6() {
            tokio::net::TcpSocket::new_v6().unwrap()
        } else {
            tokio::net::TcpSocket::new_v4().unwrap()
        };
        socket.bind(addr).unwrap();
        let local = socket.local_addr().unwrap();
        (socket, local)
    }

    /// A listener whose accept queue is full: a new connection gets no answer at all.
    async fn silent_addr() -> (Vec<TcpStream>, tokio::net::TcpListener, SocketAddr) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..16 {
            let connect = TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(300), connect).await {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => return (queued, listener, addr),
            }
        }
        panic!("the accept queue of {addr} never filled up");
    }

    #[tokio::test]
    async fn accepts_when_only_the_last_resolved_address_listens() {
        let (_v6, refused_v6) = refused_addr("[::1]");
        let (_v4, refused_v4) = refused_addr("127.0.0.1");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();

        let addrs = [refused_v6, refused_v4, open];
        let result = connect_any("db:5432", &addrs, Duration::from_secs(5)).await;

        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn addresses_that_all_refuse_are_named_once_and_polled_fast() {
        let (_v6, refused_v6) = refused_addr("[::1]");
        let (_v4, refused_v4) = refused_addr("127.0.0.1");

        let failure = connect_any("db:5432", &[refused_v6, refused_v4], Duration::from_secs(5))
            .await
            .unwrap_err();

        assert_eq!(failure.error.to_string(), "db:5432: connection refused");
        assert!(failure.fast);
        assert!(combine(vec![failure]).at_wait_cadence());
    }

    #[tokio::test]
    async fn addresses_that_fail_differently_are_each_named_and_back_off() {
        let (_v4, refused) = refused_addr("127.0.0.1");
        let (_queued, _listener, silent) = silent_addr().await;

        let failure = connect_any("db:5432", &[silent, refused], Duration::from_millis(200))
            .await
            .unwrap_err();

        assert_eq!(
            failure.error.to_string(),
            format!("db:5432: {silent}: no answer within 200ms; {refused}: connection refused")
        );
        assert!(!failure.fast);
    }

    #[test]
    fn an_attempt_backs_off_unless_every_pending_target_was_refused() {
        let refused = || Failure {
            error: StepError::transient("db:5432: connection refused"),
            fast: true,
        };
        let unresolved = Failure {
            error: StepError::transient("cache:6379: cannot resolve cache"),
            fast: false,
        };

        let both = combine(vec![refused(), unresolved]);
        let only_refused = combine(vec![refused(), refused()]);

        assert_eq!(
            both.to_string(),
            "db:5432: connection refused; cache:6379: cannot resolve cache"
        );
        assert!(both.is_transient());
        assert!(!both.at_wait_cadence());
        assert!(only_refused.at_wait_cadence());
    }
}
