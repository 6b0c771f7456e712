//! The plan's data-flow check with the built-in steps: a typo in a reference that a `Command`,
//! a `WriteFile` or a `CaBundle` reads, or in a key of what a `KvRead` publishes, is exit 2
//! before any step runs, with the exact message and the closest name. Validation never
//! contacts Vault (the address is a closed port).
// Each section needs its family; without any of them there is nothing to check here.
#![cfg(any(
    feature = "command",
    feature = "fs",
    feature = "certs",
    all(feature = "postgres", feature = "redis")
))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use init_core::{Context, Outcome, Plan, Publication, Step, StepError, async_trait};
use serde_json::json;

/// Publishes `db` (username, password) and says so; counts its runs, so a test can tell that
/// nothing ran.
#[derive(Debug, Clone, Default)]
struct PublishDb(Arc<AtomicUsize>);

impl PublishDb {
    fn runs(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Step for PublishDb {
    fn name(&self) -> &str {
        "publish-db"
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(vec![
            Publication::new("db").with_keys(["username", "password"]),
        ])
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        ctx.publish_secret(
            "db",
            json!({ "username": "orders", "password": "hunter2-pass" }),
        );
        Ok(())
    }
}

/// Runs `plan` and returns its error, checking it was refused as invalid (exit 2) before
/// `first` ran.
async fn refused(plan: Plan, ctx: &Context, first: &PublishDb) -> String {
    let report = plan.run(ctx).await;
    assert_eq!(report.outcome, Outcome::Invalid, "{report:?}");
    assert_eq!(report.exit_code(), 2);
    assert_eq!(first.runs(), 0, "a step ran");
    report.error.expect("an invalid plan says why")
}

fn env() -> Context {
    Context::with_env([("HOME", "/"), ("PATH", "/usr/bin:/bin")])
}

#[cfg(feature = "command")]
mod command {
    use super::*;
    use init_steps::command::Command;

    #[tokio::test]
    async fn a_key_typo_in_env_from_value_is_refused_before_any_step_runs() {
        let first = PublishDb::default();
        let plan = Plan::new("p")
            .step(first.clone())
            .step(Command::new(["migrate", "up"]).env_from_value("PGPASSWORD", "db.pasword"));
        assert_eq!(
            refused(plan, &env(), &first).await,
            "step \"migrate\": environment variable PGPASSWORD: values.db.pasword: values.db \
             has no key \"pasword\" (it has: password, username) (did you mean \
             values.db.password?)"
        );
    }

    #[tokio::test]
    async fn a_name_typo_in_env_from_value_names_the_closest_published_name() {
        let first = PublishDb::default();
        let plan = Plan::new("p")
            .step(first.clone())
            .step(Command::new(["migrate", "up"]).env_from_value("PGPASSWORD", "bd.password"));
        assert_eq!(
            refused(plan, &env(), &first).await,
            "step \"migrate\": environment variable PGPASSWORD: values.bd.password is not \
             published by any step before this one (did you mean values.db?)"
        );
    }

    #[tokio::test]
    async fn a_correct_env_from_value_passes_and_the_program_gets_the_value() {
        let first = PublishDb::default();
        let ctx = env();
        let plan = Plan::new("p").step(first.clone()).step(
            Command::shell("test \"$PGPASSWORD\" = hunter2-pass")
                .env_from_value("PGPASSWORD", "db.password"),
        );
        let report = plan.run(&ctx).await;
        assert!(report.is_success(), "{report:?}");
        assert_eq!(first.runs(), 1);
    }
}

#[cfg(feature = "fs")]
mod fs {
    use super::*;
    use init_steps::fs::WriteFile;

    #[tokio::test]
    async fn a_key_typo_in_a_written_value_is_refused_before_any_step_runs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("password");
        let first = PublishDb::default();
        let plan = Plan::new("p")
            .step(first.clone())
            .step(WriteFile::value(&dest, "db.passwrd"));
        assert_eq!(
            refused(plan, &env(), &first).await,
            format!(
                "step \"write {}\": content: values.db.passwrd: values.db has no key \
                 \"passwrd\" (it has: password, username) (did you mean values.db.password?)",
                dest.display()
            )
        );
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_value_read_before_its_publisher_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("password");
        let first = PublishDb::default();
        let plan = Plan::new("p")
            .step(WriteFile::value(&dest, "db.password"))
            .step(first.clone());
        assert_eq!(
            refused(plan, &env(), &first).await,
            format!(
                "step \"write {}\": content: values.db.password is not published by any step \
                 before this one",
                dest.display()
            )
        );
    }
}

#[cfg(feature = "certs")]
mod certs {
    use super::*;
    use init_steps::certs::CaBundle;

    /// Publishes a PKI answer's public parts, as `PkiIssue::publish("pki")` declares them.
    #[derive(Debug)]
    struct PublishPki;

    #[async_trait]
    impl Step for PublishPki {
        fn name(&self) -> &str {
            "publish-pki"
        }

        fn publishes(&self) -> Option<Vec<Publication>> {
            Some(vec![
                Publication::new("pki").with_keys(["issuing_ca", "ca_chain"]),
            ])
        }

        async fn run(&self, _: &Context) -> Result<(), StepError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_key_typo_in_a_published_certificate_is_refused_before_any_step_runs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("ca.crt");
        let first = PublishDb::default();
        let plan = Plan::new("p").step(first.clone()).step(PublishPki).step(
            CaBundle::new(&dest)
                .without_system_bundle()
                .published("pki.isuing_ca"),
        );
        assert_eq!(
            refused(plan, &env(), &first).await,
            format!(
                "step \"ca-bundle {}\": published certificates: values.pki.isuing_ca: values.pki \
                 has no key \"isuing_ca\" (it has: ca_chain, issuing_ca) (did you mean \
                 values.pki.issuing_ca?)",
                dest.display()
            )
        );
        assert!(!dest.exists());
    }
}

#[cfg(all(feature = "vault", feature = "fs"))]
mod vault {
    use super::*;
    use init_steps::fs::WriteFile;
    use init_steps::vault::KvRead;

    /// Validation reads `VAULT_ADDR` and `VAULT_TOKEN` and contacts nothing: port 1 is closed.
    fn vault_env() -> Context {
        Context::with_env([
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("VAULT_TOKEN", "hvs.dataflow-test-token"),
        ])
    }

    #[tokio::test]
    async fn with_fields_a_nested_typo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("password");
        let first = PublishDb::default();
        let plan = Plan::new("p")
            .step(first.clone())
            .step(
                KvRead::v2("secret", "orders/db")
                    .fields(["username", "password"])
                    .publish_secret("orders-db"),
            )
            .step(WriteFile::value(&dest, "orders-db.pasword"));
        assert_eq!(
            refused(plan, &vault_env(), &first).await,
            format!(
                "step \"write {}\": content: values.orders-db.pasword: values.orders-db has no \
                 key \"pasword\" (it has: password, username) (did you mean \
                 values.orders-db.password?)",
                dest.display()
            )
        );
    }

    #[test]
    fn without_fields_only_the_published_name_is_checked() {
        let dest = std::path::Path::new("/secrets/password");
        let read = || KvRead::v2("secret", "orders/db").publish_secret("orders-db");
        let nested = Plan::new("p")
            .step(read())
            .step(WriteFile::value(dest, "orders-db.pasword"));
        assert_eq!(nested.validate(&vault_env()), Ok(()));

        let top = Plan::new("p")
            .step(read())
            .step(WriteFile::value(dest, "order-db.password"));
        assert_eq!(
            top.validate(&vault_env()).unwrap_err().to_string(),
            "step \"write /secrets/password\": content: values.order-db.password is not \
             published by any step before this one (did you mean values.orders-db?)"
        );
    }
}

#[cfg(all(feature = "postgres", feature = "redis"))]
mod databases {
    use super::*;
    use init_steps::postgres::PostgresWait;
    use init_steps::redis::RedisWait;

    #[tokio::test]
    async fn a_typo_in_a_password_from_a_value_is_refused_before_any_step_runs() {
        let first = PublishDb::default();
        let plan = Plan::new("p").step(first.clone()).concurrently((
            PostgresWait::new("db:5432").password_from_value("db.pasword"),
            RedisWait::new("cache:6379").password_from_value("cache.password"),
        ));
        assert_eq!(
            refused(plan, &env(), &first).await,
            "step \"postgres db:5432\": password: values.db.pasword: values.db has no key \
             \"pasword\" (it has: password, username) (did you mean values.db.password?); \
             step \"redis cache:6379\": password: values.cache.password is not published by \
             any step before this one"
        );
    }

    #[test]
    fn a_password_from_an_environment_variable_is_checked_once_by_the_step() {
        let plan =
            Plan::new("p").step(RedisWait::new("cache:6379").password_from_env("REDIS_PASWORD"));
        assert_eq!(
            plan.validate(&env()).unwrap_err().problems(),
            [
                "step \"redis cache:6379\": redis cache:6379: environment variable REDIS_PASWORD is not set"
            ]
        );
    }
}
