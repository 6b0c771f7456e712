//! Secrets never leak and never corrupt output: property tests over generated secrets through
//! every output path of init-core (text log, JSON log, report, termination message, error,
//! streamed text), and one test per leak the redaction by value fixed.
#![cfg(feature = "run-main")]

use std::cell::RefCell;
use std::io;
use std::sync::Once;

use base64::Engine as _;
use init_core::{
    Context, LogSettings, MIN_SECRET_LEN, Plan, Policy, REDACTED, Redactor, Retry, Step, StepError,
    StepExt, async_trait,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

thread_local! {
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static JSON: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The redactor the global log layers use; each test registers into it.
fn log_redactor() -> &'static Redactor {
    static REDACTOR: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    REDACTOR.get_or_init(Redactor::new)
}

struct ThreadBuffer(&'static std::thread::LocalKey<RefCell<Vec<u8>>>);

impl io::Write for ThreadBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.with(|b| b.borrow_mut().extend_from_slice(data));
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs, once, a global subscriber with the text and the JSON layer of `run_main`, each
/// writing to a buffer of the thread that logs (a global one: a thread-local default races
/// with other tests over tracing's cached callsite interest).
fn install_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let settings = |format: &str| {
            let format = format.to_owned();
            LogSettings::from_lookup(move |k| match k {
                "INITKIT_LOG" => Some("trace".to_owned()),
                "INITKIT_LOG_FORMAT" => Some(format.clone()),
                _ => None,
            })
            .unwrap()
        };
        let subscriber = tracing_subscriber::registry()
            .with(settings("text").layer(log_redactor().clone(), || ThreadBuffer(&TEXT)))
            .with(settings("json").layer(log_redactor().clone(), || ThreadBuffer(&JSON)));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Runs `f` and returns the text and JSON log lines it wrote on this thread.
fn logged(f: impl FnOnce()) -> (String, Vec<String>) {
    install_logs();
    TEXT.with(|b| b.borrow_mut().clear());
    JSON.with(|b| b.borrow_mut().clear());
    f();
    let text = TEXT.with(|b| String::from_utf8(b.borrow().clone()).unwrap());
    let json = JSON.with(|b| String::from_utf8(b.borrow().clone()).unwrap());
    (text, json.lines().map(str::to_owned).collect())
}

/// The forms a formatter or protocol gives `secret` that must never appear.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let debug = format!("{secret:?}");
    let mut out = vec![
        secret.to_owned(),
        json[1..json.len() - 1].to_owned(),
        debug[1..debug.len() - 1].to_owned(),
    ];
    if secret.contains('\n') {
        out.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.chars().count() >= MIN_SECRET_LEN)
                .map(str::to_owned),
        );
    }
    out
}

fn assert_absent(output: &str, secret: &str, with_placeholder: &str, what: &str) {
    for form in forms(secret) {
        // A form that the output's own structure contains (with no secret in it) proves nothing.
        if with_placeholder.contains(&form) {
            continue;
        }
        assert!(
            !output.contains(&form),
            "{what}: {form:?} appears in {output:?}"
        );
    }
}

/// Secrets of every kind: ASCII punctuation, quotes, backslashes, newlines, unicode; 1 to 200
/// characters, single- and multi-line.
fn secrets() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => (0x21u8..0x7f).prop_map(char::from),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('\n'),
        1 => Just(' '),
        2 => any::<char>(),
    ];
    proptest::collection::vec(piece, 1..200).prop_map(|chars| chars.into_iter().collect())
}

#[derive(Debug)]
struct FailWith(String);

#[async_trait]
impl Step for FailWith {
    fn name(&self) -> &str {
        "vault-db"
    }

    fn policy(&self) -> Policy {
        Policy::new().with_retry(Retry::never())
    }

    async fn run(&self, _: &Context) -> Result<(), StepError> {
        Err(StepError::permanent(format!("login failed: {}", self.0))
            .with_source(io::Error::other(format!("server said {:?}", self.0))))
    }
}

fn run_plan(plan: &Plan, ctx: &Context) -> init_core::Report {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(plan.run(ctx))
}

/// Everything one secret goes through: text and JSON logs (fields of every kind, the message,
/// a span field, an error), the report, the termination message, an error's text.
fn outputs(secret: &str, register: bool) -> (String, Vec<String>, String, String, String) {
    let ctx = Context::with_redactor(log_redactor().clone());
    if register {
        ctx.register_secret(secret);
    }
    let secret_owned = secret.to_owned();
    let (text, json) = logged(|| {
        let span = tracing::info_span!("step", step = %secret_owned);
        let _entered = span.enter();
        let err = io::Error::other(secret_owned.clone());
        tracing::info!(
            display = %secret_owned,
            debug = ?secret_owned,
            plain = secret_owned.as_str(),
            error = &err as &(dyn std::error::Error + 'static),
            attempts = 1u64,
            "login with {secret_owned} and {secret_owned:?}"
        );
    });
    let plan = Plan::new("orders-init").step(FailWith(secret.to_owned()));
    let report = run_plan(&plan, &ctx);
    let report_json = report.redacted(ctx.redactor()).to_json();
    let line = init_core::termination_message(&report, ctx.redactor());
    let error = ctx.redact(&FailWith(secret.to_owned()).0);
    (text, json, report_json, line, error)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_registered_secret_reaches_any_output_and_json_always_parses(secret in secrets()) {
        prop_assume!(secret.chars().count() >= MIN_SECRET_LEN);
        // What the output looks like with a harmless value of the same shape.
        let placeholder = "p".repeat(secret.chars().count());
        let (p_text, p_json, p_report, p_line, _) = outputs(&placeholder, false);
        let (text, json, report, line, error) = outputs(&secret, true);

        assert_absent(&text, &secret, &p_text, "text log");
        for l in &json {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        }
        assert_absent(&json.join("\n"), &secret, &p_json.join("\n"), "json log");
        serde_json::from_str::<Value>(&report).unwrap();
        assert_absent(&report, &secret, &p_report, "report");
        assert_absent(&line, &secret, &p_line, "termination message");
        assert_absent(&error, &secret, "login failed: ", "error");
    }

    #[test]
    fn a_short_secret_never_changes_a_timestamp_a_count_or_a_step_name(
        secret in "[0-9a-z:.T-]{1,5}"
    ) {
        let ctx = Context::with_redactor(log_redactor().clone());
        ctx.publish_secret("kv", json!({ "replicas": secret.clone() }));
        let (text, json) = logged(|| {
            let span = tracing::info_span!("step", step = "vault-db");
            let _entered = span.enter();
            tracing::info!(attempts = 1u64, elapsed_ms = 2026u64, "step succeeded");
        });
        prop_assert!(!text.contains(REDACTED), "{}", text);
        let line: Value = serde_json::from_str(&json[0]).unwrap();
        prop_assert_eq!(&line["attempts"], 1);
        prop_assert_eq!(&line["elapsed_ms"], 2026);
        prop_assert_eq!(&line["span"]["step"], "vault-db");
        let stamp = line["timestamp"].as_str().unwrap();
        prop_assert!(stamp.ends_with('Z') && !stamp.contains(REDACTED));

        let plan = Plan::new("orders-init").step(FailWith("x".into()).optional());
        let report = run_plan(&plan, &ctx);
        let report_json: Value = serde_json::from_str(&report.redacted(ctx.redactor()).to_json()).unwrap();
        prop_assert_eq!(&report_json["steps"][0]["attempts"], 1);
        prop_assert_eq!(&report_json["steps"][0]["name"], "vault-db");
        let message = init_core::termination_message(&report, ctx.redactor());
        prop_assert!(message.starts_with("plan \"orders-init\" succeeded: 1 steps in "), "{}", message);
    }

    #[test]
    fn streamed_text_split_anywhere_is_masked_as_the_whole_text(
        secret in secrets(),
        cuts in proptest::collection::vec(1usize..64, 1..40),
    ) {
        prop_assume!(secret.chars().count() >= MIN_SECRET_LEN);
        let redactor = Redactor::new();
        redactor.register(&secret);
        let text = format!("start {secret}\nmiddle {secret}{secret} end");
        let whole = redactor.redact(&text).into_owned();
        let bytes = text.as_bytes();
        let mut stream = redactor.stream();
        let mut out = String::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= bytes.len() {
                break;
            }
            let end = (at + cut).min(bytes.len());
            out += &stream.push_bytes(&bytes[at..end]);
            at = end;
        }
        out += &stream.finish();
        prop_assert_eq!(out, whole);
    }

    #[test]
    fn base64_of_user_colon_secret_is_masked(secret in secrets(), user in "[a-z]{0,12}") {
        prop_assume!(secret.len() >= 8 && secret.chars().count() >= MIN_SECRET_LEN);
        let redactor = Redactor::new();
        redactor.register(&secret);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        let masked = redactor.redact(&encoded);
        // What is left besides the mask: the user's part and at most the two groups that mix
        // the secret's first and last bytes with their neighbours (and the padding).
        let left = masked.replace(REDACTED, "").len();
        let user_part = (user.len() + 1).div_ceil(3) * 4;
        prop_assert!(left <= user_part + 8, "{} -> {}", encoded, masked);
    }
}

#[test]
fn a_secret_with_quotes_and_backslashes_is_masked_before_it_is_escaped() {
    let secret = "pa\"ss\\w0rd";
    let (text, json, ..) = outputs(secret, true);
    assert!(!text.contains("pa\\\"ss\\\\w0rd"), "{text}");
    assert!(!json.join("\n").contains("pa\\\"ss\\\\w0rd"));
    let line: Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(line["message"], "login with [redacted] and \"[redacted]\"");
    assert_eq!(line["plain"], REDACTED);
    assert_eq!(line["span"]["step"], REDACTED);
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_even_short_of_eight_characters() {
    let key = "-----BEGIN KEY-----\nMIIEvQ\nIBADAN\n-----END KEY-----";
    let redactor = Redactor::new();
    redactor.register(key);
    assert_eq!(
        redactor.redact("a line: IBADAN, another: MIIEvQ"),
        "a line: [redacted], another: [redacted]"
    );
}

#[test]
fn numbers_inside_a_published_secret_are_registered() {
    let ctx = Context::new();
    ctx.publish_secret("db", json!({ "pin": 12345678, "port": 5432 }));
    assert_eq!(ctx.redact("pin 12345678 on 5432"), "pin [redacted] on 5432");
}

#[test]
fn a_plain_publish_after_a_secret_one_keeps_the_name_secret() {
    let ctx = Context::new();
    ctx.publish_secret("db", "first-password");
    ctx.publish("db", "second-password");
    assert!(ctx.is_secret("db"));
    assert!(ctx.published().is_secret("db"));
    assert_eq!(ctx.redact("second-password"), REDACTED);
}

#[test]
fn plain_fields_of_a_secret_stay_readable() {
    let ctx = Context::new();
    ctx.publish_secret_except(
        "db",
        json!({ "username": "orders", "password": "hunter2-pass" }),
        ["username"],
    );
    assert_eq!(
        ctx.redact(
            "plan=\"orders-init\" password authentication failed for user \"orders\": hunter2-pass"
        ),
        "plan=\"orders-init\" password authentication failed for user \"orders\": [redacted]"
    );
}

#[test]
fn secret_environment_variables_are_masked_before_the_first_step() {
    #[derive(Debug)]
    struct Leak;
    #[async_trait]
    impl Step for Leak {
        fn name(&self) -> &str {
            "leak"
        }
        async fn run(&self, ctx: &Context) -> Result<(), StepError> {
            Err(StepError::permanent(format!(
                "token {} password {}",
                ctx.env("VAULT_TOKEN").unwrap(),
                ctx.env("ORDERS_DSN").unwrap()
            )))
        }
    }
    let ctx = Context::with_env([
        ("VAULT_TOKEN", "hvs.CAESIJ-token"),
        ("ORDERS_DSN", "host=db password=x"),
    ]);
    let plan = Plan::new("p")
        .secret_env(["ORDERS_DSN"])
        .step(Leak.with_policy(Policy::new().with_retry(Retry::never())));
    let report = run_plan(&plan, &ctx);
    assert_eq!(
        report.step("leak").unwrap().error.as_deref(),
        Some("token [redacted] password [redacted]")
    );
    assert!(ctx.is_secret_env("ORDERS_DSN"));
}

#[test]
fn a_malformed_secret_env_pattern_makes_the_plan_invalid() {
    let err = Plan::new("p")
        .secret_env(["A*B"])
        .validate(&Context::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("secret_env pattern \"A*B\""),
        "{err}"
    );
}
