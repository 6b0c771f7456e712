//! The `Step` trait (one attempt of one piece of work) and `StepExt`, which attaches a policy to
//! any step.

use std::time::Duration;

use async_trait::async_trait;

use crate::context::Context;
use crate::dataflow::{Publication, Reference};
use crate::error::StepError;
use crate::policy::{OnFailure, Policy, Retry};
use crate::validate::ValidateContext;

/// One piece of work in a [`Plan`](crate::Plan): wait for a port, read a secret, render a file.
///
/// [`run`](Self::run) is **one attempt**: it never loops or sleeps to retry; the executor does,
/// following the step's [`Policy`]. It returns a [`StepError`] that says whether another attempt
/// can help. [`validate`](Self::validate) checks the configuration only (addresses, URLs,
/// template syntax, modes), with no I/O that can wait; the plan runs it for every step before
/// any step runs.
///
/// Steps must be idempotent: the kubelet restarts a failed init container from the start.
///
/// # Examples
///
/// ```
/// use init_core::{async_trait, Context, Step, StepError};
///
/// #[derive(Debug)]
/// struct Hello;
///
/// #[async_trait]
/// impl Step for Hello {
///     fn name(&self) -> &str {
///         "hello"
///     }
///
///     async fn run(&self, ctx: &Context) -> Result<(), StepError> {
///         ctx.publish("greeting", "hello");
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Step: Send + Sync {
    /// The step's name: unique in its plan, shown in logs, the report and the termination
    /// message.
    fn name(&self) -> &str;

    /// Checks the configuration without waiting on anything; run for every step before any
    /// step runs. Return [`StepError::invalid`] naming the input and what was expected.
    ///
    /// `cx` gives the environment the plan will run with: a step that reads a variable in
    /// [`run`](Self::run) checks it here, so a bad value fails in milliseconds (exit 2)
    /// instead of after the steps before it.
    ///
    /// # Errors
    ///
    /// A configuration that cannot work.
    ///
    /// # Examples
    ///
    /// ```
    /// use init_core::{async_trait, Context, Step, StepError, ValidateContext};
    ///
    /// #[derive(Debug)]
    /// struct NeedsPort;
    ///
    /// #[async_trait]
    /// impl Step for NeedsPort {
    ///     fn name(&self) -> &str {
    ///         "needs-port"
    ///     }
    ///
    ///     fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
    ///         match cx.env("PORT").map(|p| p.parse::<u16>()) {
    ///             Some(Ok(_)) => Ok(()),
    ///             _ => Err(StepError::invalid("PORT: expected a port number (1-65535)")),
    ///         }
    ///     }
    ///
    ///     async fn run(&self, _: &Context) -> Result<(), StepError> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let ctx = Context::with_env([("PORT", "http")]);
    /// assert!(NeedsPort.validate(&ValidateContext::new(&ctx)).unwrap_err().is_invalid());
    /// ```
    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        let _ = cx;
        Ok(())
    }

    /// What the step publishes, for [`Plan::validate`](crate::Plan::validate)'s data-flow
    /// check: `None` (the default) when it does not say, `Some(vec![])` when it publishes
    /// nothing. A step that says lets the plan prove that a later read of `values.<name>` (and,
    /// with keys, `values.<name>.<key>`) is satisfied; after a step that does not say, a name no
    /// step declared cannot be refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use init_core::{async_trait, Context, Publication, Step, StepError};
    ///
    /// #[derive(Debug)]
    /// struct Settings;
    ///
    /// #[async_trait]
    /// impl Step for Settings {
    ///     fn name(&self) -> &str {
    ///         "settings"
    ///     }
    ///
    ///     fn publishes(&self) -> Option<Vec<Publication>> {
    ///         Some(vec![Publication::new("settings").with_keys(["port"])])
    ///     }
    ///
    ///     async fn run(&self, ctx: &Context) -> Result<(), StepError> {
    ///         ctx.publish("settings", serde_json::json!({ "port": 8080 }));
    ///         Ok(())
    ///     }
    /// }
    /// assert_eq!(Settings.publishes().unwrap()[0].name(), "settings");
    /// ```
    fn publishes(&self) -> Option<Vec<Publication>> {
        None
    }

    /// The published values and environment variables the step reads (a template's
    /// `values.*` and `env.*`, a command's `env_from_value`), which
    /// [`Plan::validate`](crate::Plan::validate) checks against the steps before it and the
    /// environment. The default reads nothing that can be checked.
    ///
    /// # Examples
    ///
    /// ```
    /// use init_core::{async_trait, Context, Reference, Step, StepError};
    ///
    /// #[derive(Debug)]
    /// struct Connect;
    ///
    /// #[async_trait]
    /// impl Step for Connect {
    ///     fn name(&self) -> &str {
    ///         "connect"
    ///     }
    ///
    ///     fn reads(&self) -> Vec<Reference> {
    ///         vec![Reference::value("db.password"), Reference::env("DB_HOST")]
    ///     }
    ///
    ///     async fn run(&self, _: &Context) -> Result<(), StepError> {
    ///         Ok(())
    ///     }
    /// }
    /// assert_eq!(Connect.reads()[0].to_string(), "values.db.password");
    /// ```
    fn reads(&self) -> Vec<Reference> {
        Vec::new()
    }

    /// The policy the executor applies; steps override it to change their defaults (waits
    /// return [`Policy::wait`]), and [`StepExt`] overrides it per use.
    fn policy(&self) -> Policy {
        Policy::new()
    }

    /// One attempt.
    ///
    /// # Errors
    ///
    /// A [`StepError`] classified as transient (another attempt may succeed) or permanent.
    async fn run(&self, ctx: &Context) -> Result<(), StepError>;
}

#[async_trait]
impl<S: Step + ?Sized> Step for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        (**self).validate(cx)
    }

    fn policy(&self) -> Policy {
        (**self).policy()
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        (**self).publishes()
    }

    fn reads(&self) -> Vec<Reference> {
        (**self).reads()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        (**self).run(ctx).await
    }
}

/// Attaches policy settings and a name to any step. Implemented for every [`Step`].
///
/// Each method starts from the step's own policy and changes one thing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use init_core::{async_trait, Context, OnFailure, Retry, Step, StepError, StepExt};
///
/// # #[derive(Debug)] struct Warm;
/// # #[async_trait] impl Step for Warm {
/// #     fn name(&self) -> &str { "warm" }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// let step = Warm
///     .named("warm-cache")
///     .retry(Retry::new().with_max_attempts(3))
///     .timeout(Duration::from_secs(30))
///     .optional();
/// assert_eq!(step.name(), "warm-cache");
/// assert_eq!(step.policy().on_failure(), OnFailure::Continue);
/// ```
pub trait StepExt: Step + Sized {
    /// Boxes the step, for [`Plan::concurrently`](crate::Plan::concurrently) and collections.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// let steps: Vec<Box<dyn Step>> = vec![A.boxed(), A.named("b").boxed()];
    /// assert_eq!(steps[1].name(), "b");
    /// ```
    fn boxed(self) -> Box<dyn Step>
    where
        Self: 'static,
    {
        Box::new(self)
    }

    /// Replaces the whole policy.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Policy, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.with_policy(Policy::wait()).policy(), Policy::wait());
    /// ```
    fn with_policy(self, policy: Policy) -> Configured<Self> {
        Configured {
            policy,
            name: None,
            inner: self,
        }
    }

    /// Gives the step another name.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.named("postgres").name(), "postgres");
    /// ```
    fn named(self, name: impl Into<String>) -> Configured<Self> {
        Configured {
            policy: self.policy(),
            name: Some(name.into()),
            inner: self,
        }
    }

    /// Sets the retry.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Retry, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.retry(Retry::never()).policy().retry(), Retry::never());
    /// ```
    fn retry(self, retry: Retry) -> Configured<Self> {
        let policy = self.policy().with_retry(retry);
        self.with_policy(policy)
    }

    /// Bounds the whole step (attempts and sleeps).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.timeout(Duration::from_secs(9)).policy().timeout(), Some(Duration::from_secs(9)));
    /// ```
    fn timeout(self, timeout: Duration) -> Configured<Self> {
        let policy = self.policy().with_timeout(timeout);
        self.with_policy(policy)
    }

    /// Bounds each attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// let step = A.attempt_timeout(Duration::from_secs(1));
    /// assert_eq!(step.policy().attempt_timeout(), Some(Duration::from_secs(1)));
    /// ```
    fn attempt_timeout(self, timeout: Duration) -> Configured<Self> {
        let policy = self.policy().with_attempt_timeout(timeout);
        self.with_policy(policy)
    }

    /// Makes the step optional: its failure is reported and the plan goes on.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, OnFailure, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.optional().policy().on_failure(), OnFailure::Continue);
    /// ```
    fn optional(self) -> Configured<Self> {
        let policy = self.policy().with_on_failure(OnFailure::Continue);
        self.with_policy(policy)
    }

    /// Runs the step once across reruns (needs a plan state directory).
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert!(A.once().policy().once());
    /// ```
    fn once(self) -> Configured<Self> {
        let policy = self.policy().with_once(true);
        self.with_policy(policy)
    }
}

impl<S: Step + Sized> StepExt for S {}

/// A step with a policy or name set by [`StepExt`].
///
/// ```
/// # use init_core::{async_trait, Context, Step, StepError, StepExt};
/// # #[derive(Debug)] struct A;
/// # #[async_trait] impl Step for A {
/// #     fn name(&self) -> &str { "a" }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// let configured: init_core::Configured<A> = A.once();
/// assert_eq!(configured.inner().name(), "a");
/// ```
#[derive(Debug, Clone)]
pub struct Configured<S> {
    inner: S,
    name: Option<String>,
    policy: Policy,
}

impl<S> Configured<S> {
    /// The step inside.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Step, StepError, StepExt};
    /// # #[derive(Debug)] struct A;
    /// # #[async_trait] impl Step for A {
    /// #     fn name(&self) -> &str { "a" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(A.named("b").inner().name(), "a");
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Step> Step for Configured<S> {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.inner.name())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.inner.validate(cx)
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        self.inner.publishes()
    }

    fn reads(&self) -> Vec<Reference> {
        self.inner.reads()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        self.inner.run(ctx).await
    }
}
