//! Fake steps shared by the init-core integration tests: scripted outcomes, recorded attempt
//! times, steps that never finish.

#![allow(dead_code, unreachable_pub)] // Each test file uses part of this.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use init_core::{Context, Policy, Retry, Step, StepError, ValidateContext, async_trait};
use tokio::time::Instant;

/// What one scripted attempt does.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok,
    Transient(&'static str),
    Permanent(&'static str),
    /// Never finishes (until dropped).
    Hang,
    /// Sleeps, then succeeds.
    SleepOk(Duration),
    /// Sleeps, then fails permanently.
    SleepFail(Duration),
}

/// A step whose attempts follow a script (the last entry repeats), recording when each attempt
/// started (tokio time) and how many ran.
#[derive(Debug, Clone)]
pub struct Scripted {
    name: String,
    script: Arc<Mutex<VecDeque<Outcome>>>,
    last: Outcome,
    pub log: Arc<Mutex<Vec<Instant>>>,
    policy: Policy,
    invalid: Option<&'static str>,
}

impl Scripted {
    pub fn new(name: &str, script: impl IntoIterator<Item = Outcome>) -> Self {
        let script: VecDeque<Outcome> = script.into_iter().collect();
        let last = script.back().cloned().unwrap_or(Outcome::Ok);
        Self {
            name: name.to_owned(),
            script: Arc::new(Mutex::new(script)),
            last,
            log: Arc::default(),
            policy: Policy::new().with_retry(exact_retry()),
            invalid: None,
        }
    }

    pub fn ok(name: &str) -> Self {
        Self::new(name, [Outcome::Ok])
    }

    /// Overrides the step's own default policy (what `Step::policy` returns).
    pub fn with_default_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Makes `validate` fail with this message.
    pub fn invalid(mut self, message: &'static str) -> Self {
        self.invalid = Some(message);
        self
    }

    pub fn attempts(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Offsets of each attempt from `origin`.
    pub fn offsets(&self, origin: Instant) -> Vec<Duration> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|t| *t - origin)
            .collect()
    }
}

/// Retries 100 ms, 200 ms, 400 ms … without jitter, 5 attempts.
pub fn exact_retry() -> Retry {
    Retry::new()
        .with_initial_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .without_jitter()
}

#[async_trait]
impl Step for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        match self.invalid {
            Some(message) => Err(StepError::invalid(message)),
            None => Ok(()),
        }
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        self.log.lock().unwrap().push(Instant::now());
        let next = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.last.clone());
        match next {
            Outcome::Ok => Ok(()),
            Outcome::Transient(m) => Err(StepError::transient(m)),
            Outcome::Permanent(m) => Err(StepError::permanent(m)),
            Outcome::Hang => std::future::pending().await,
            Outcome::SleepOk(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Outcome::SleepFail(d) => {
                tokio::time::sleep(d).await;
                Err(StepError::permanent("failed after sleeping"))
            }
        }
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
