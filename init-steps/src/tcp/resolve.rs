//! Address resolution for `TcpWait`: a target's name looked up (every address it resolves to,
//! each once), and the last successful lookup of each target reused for a second.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use init_core::StepError;
use tokio::time::Instant;

use super::connect::Failure;
use super::target::{Address, Host};

/// How long a successful name lookup is reused. A refused port is polled at the wait cadence
/// (every 10 to 100 ms); looking its name up again each time would send the cluster DNS up to
/// ~100 queries a second per replica (100 000 for a thousand replicas), so a lookup is repeated
/// at most once a second, and a changed address is still noticed within a second.
pub(super) const RESOLVE_REUSE: Duration = Duration::from_secs(1);

/// The last successful lookup of each target of one step: `lookups[i]` is target `i`'s.
#[derive(Debug)]
pub(super) struct Lookups(Mutex<Vec<Option<Lookup>>>);

/// The addresses a name resolved to, and when.
#[derive(Debug, Clone)]
struct Lookup {
    addrs: Vec<SocketAddr>,
    at: Instant,
}

impl Lookups {
    /// No lookup yet for any of `targets` targets.
    pub(super) fn new(targets: usize) -> Self {
        Self(Mutex::new(vec![None; targets]))
    }

    /// Target `index`'s addresses: the last lookup if it is younger than [`RESOLVE_REUSE`],
    /// otherwise a new one (remembered when it succeeds).
    pub(super) async fn resolve(
        &self,
        index: usize,
        address: &Address,
    ) -> Result<Vec<SocketAddr>, Failure> {
        let fresh = self.0.lock().unwrap_or_else(PoisonError::into_inner)[index]
            .as_ref()
            .filter(|lookup| lookup.at.elapsed() < RESOLVE_REUSE)
            .map(|lookup| lookup.addrs.clone());
        if let Some(addrs) = fresh {
            return Ok(addrs);
        }
        let addrs = resolve(address).await?;
        if matches!(address.host, Host::Name(_)) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(Lookup {
                addrs: addrs.clone(),
                at: Instant::now(),
            });
        }
        Ok(addrs)
    }

    /// Forgets every lookup: the next run of the step resolves every name again.
    pub(super) fn forget(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill(None);
    }

    /// When target `index`'s remembered lookup was made, if there is one.
    #[cfg(test)]
    pub(super) fn looked_up_at(&self, index: usize) -> Option<Instant> {
        self.0.lock().unwrap()[index].as_ref().map(|l| l.at)
    }
}

/// Every address `address` stands for: its IP, or the addresses its name resolves to now, each
/// once. A name that does not resolve (or to nothing) is a failure that backs off.
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
