//! The connection attempt of `TcpWait`: every address of a target tried at once, and how its
//! failures are classified: transient always, at the wait cadence only when every address
//! refused the connection.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use init_core::StepError;
use tokio::net::TcpStream;

/// Why one target (or one of its addresses) did not accept.
#[derive(Debug)]
pub(super) struct Failure {
    /// `postgres:5432: connection refused`.
    pub(super) error: StepError,
    /// Whether polling again soon is cheap and useful: the name resolved and every address
    /// refused the connection.
    pub(super) fast: bool,
}

/// Connects to every address at once; `Ok` as soon as one accepts (the connection is closed at
/// once), otherwise a failure that names `target` and, when the addresses failed differently,
/// each address.
pub(super) async fn connect_any(
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
pub(super) fn combine(mut failures: Vec<Failure>) -> StepError {
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
