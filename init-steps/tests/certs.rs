//! `CaBundle` with real certificates made by rcgen, a fake system bundle and real files.
#![cfg(feature = "certs")]

#[path = "support/files_common.rs"]
mod common;

use std::fs;
use std::path::Path;

use init_core::{Context, Step, ValidateContext};
use init_steps::certs::{CaBundle, Expired};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};
use serde_json::json;

/// A self-signed CA certificate called `name`, PEM; expired in 2001 when `expired`.
fn ca_pem(name: &str, expired: bool) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 2, 3);
    }
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// How many certificate blocks a PEM text holds.
fn certificate_count(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[tokio::test]
async fn joins_the_system_bundle_files_and_published_values() {
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system.crt");
    let system_text = format!("# system bundle\n{}", ca_pem("system root", false));
    write(&system, system_text.trim_end()); // no final newline: one is added
    let corp = dir.path().join("corp.pem");
    let corp_pem = format!(
        "{}{}",
        ca_pem("corp root", false),
        ca_pem("corp issuing", false)
    );
    write(&corp, &corp_pem);
    let ctx = Context::new();
    let vault_ca = ca_pem("vault ca", false);
    ctx.publish("pki", json!({ "issuing_ca": vault_ca, "ca_chain": [vault_ca.clone(), ca_pem("vault root", false)] }));

    let dest = dir.path().join("out/bundle.crt");
    let step = CaBundle::new(&dest)
        .system_bundle(&system)
        .pem_file(&corp)
        .published("pki.issuing_ca")
        .published("pki.ca_chain");
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&ctx).await.unwrap();

    let bundle = fs::read_to_string(&dest).unwrap();
    assert!(bundle.starts_with(&format!(
        "{}\n-----BEGIN CERTIFICATE-----\n",
        system_text.trim_end()
    )));
    // system 1 + corp 2 + vault 1 + chain 2 (one of them the same vault ca, dropped)
    assert_eq!(certificate_count(&bundle), 5);
    for line in bundle
        .lines()
        .filter(|l| !l.starts_with('-') && !l.starts_with('#'))
    {
        assert!(line.len() <= 64, "{line}");
    }
    assert_eq!(common::mode(&dest), 0o644 & !common::umask());

    // The extra certificates are the same bytes as the inputs, re-encoded.
    let extra: Vec<&str> = bundle
        .split("-----BEGIN CERTIFICATE-----")
        .skip(2)
        .collect();
    assert_eq!(
        format!("-----BEGIN CERTIFICATE-----{}", extra[0]).replace('\r', ""),
        ca_pem_normalised(&corp_pem, 0)
    );
}

/// The `index`th certificate of `pem`, as the bundle writes it.
fn ca_pem_normalised(pem: &str, index: usize) -> String {
    let block = pem
        .split("-----BEGIN CERTIFICATE-----")
        .nth(index + 1)
        .unwrap();
    let body: String = block
        .split("-----END CERTIFICATE-----")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[tokio::test]
async fn an_expired_certificate_is_refused_by_default_and_found_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.pem");
    write(&old, &ca_pem("old root", true));
    let dest = dir.path().join("bundle.crt");
    let step = CaBundle::new(&dest).without_system_bundle().pem_file(&old);
    let message = format!(
        "{}: certificate \"CN=old root\" expired on 2001-02-03",
        old.display()
    );
    let err = step.validate(&ValidateContext::process()).unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(err.to_string(), message);
    let err = step.run(&Context::new()).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(err.to_string(), message);
    assert!(!dest.exists());
}

#[tokio::test]
async fn an_expired_certificate_can_be_only_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.pem");
    write(&old, &ca_pem("old root", true));
    let dest = dir.path().join("bundle.crt");
    let step = CaBundle::new(&dest)
        .without_system_bundle()
        .pem_file(&old)
        .on_expired(Expired::Warn)
        .mode(0o444);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    let bundle = fs::read_to_string(&dest).unwrap();
    assert_eq!(
        bundle,
        ca_pem_normalised(&fs::read_to_string(&old).unwrap(), 0)
    );
    assert_eq!(common::mode(&dest), 0o444);
}

#[tokio::test]
async fn unparsable_pem_is_found_by_validate_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = ca_pem("good", false);
    let cases = [
        (
            "empty.pem",
            "just some text\n".to_owned(),
            "no PEM certificate in it",
        ),
        (
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
                .to_owned(),
            "certificate 1: does not parse as X.509",
        ),
        (
            "unterminated.pem",
            good.replace("-----END CERTIFICATE-----", ""),
            "invalid PEM: missing \"-----END CERTIFICATE-----\" line",
        ),
        (
            "with-key.pem",
            format!("{good}{}", KeyPair::generate().unwrap().serialize_pem()),
            "holds a private key; a CA bundle takes certificates only",
        ),
    ];
    for (file, text, what) in cases {
        let path = dir.path().join(file);
        write(&path, &text);
        let err = CaBundle::new(dir.path().join("out.crt"))
            .without_system_bundle()
            .pem_file(&path)
            .validate(&ValidateContext::process())
            .unwrap_err();
        assert!(err.is_invalid(), "{file}");
        assert_eq!(
            err.to_string(),
            format!("{}: {what}", path.display()),
            "{file}"
        );
    }
}

#[tokio::test]
async fn a_pem_file_missing_at_validation_is_read_when_the_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("written-by-an-earlier-step.pem");
    let dest = dir.path().join("bundle.crt");
    let step = CaBundle::new(&dest)
        .without_system_bundle()
        .pem_file(&later);
    step.validate(&ValidateContext::process()).unwrap();
    let err = step.run(&Context::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", later.display())
    );
    write(&later, &ca_pem("late", false));
    step.run(&Context::new()).await.unwrap();
    assert_eq!(certificate_count(&fs::read_to_string(&dest).unwrap()), 1);
}

#[tokio::test]
async fn a_missing_published_value_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bundle.crt");
    let ctx = Context::new();
    ctx.publish("pki", json!({ "serial": 1 }));
    let err = CaBundle::new(&dest)
        .without_system_bundle()
        .published("vault-ca")
        .run(&ctx)
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "ca-bundle {}: values.vault-ca is not published",
            dest.display()
        )
    );
    let err = CaBundle::new(&dest)
        .without_system_bundle()
        .published("pki.serial")
        .run(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "values.pki.serial: expected a PEM string or an array of them"
    );
}

#[tokio::test]
async fn validate_refuses_nothing_to_add_a_bad_mode_and_the_system_bundle_as_destination() {
    let err = CaBundle::new("/shared/ca.crt")
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ca-bundle /shared/ca.crt: expected at least one PEM file or published value to add"
    );
    let err = CaBundle::new("/shared/ca.crt")
        .published("x")
        .mode(0o77777)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ca-bundle /shared/ca.crt: mode 0o77777: expected permission bits between 0o000 and 0o7777"
    );
    let err = CaBundle::new("/etc/ssl/certs/ca-certificates.crt")
        .published("x")
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "ca-bundle /etc/ssl/certs/ca-certificates.crt: the destination is a system bundle; \
         expected another file (a rerun would add the certificates twice)"
    );
}

#[tokio::test]
async fn validity_dates_at_the_ends_of_the_calendar_are_checked_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let pem = |name: &str, from: (i32, u8, u8), to: (i32, u8, u8)| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
        let key = KeyPair::generate().unwrap();
        let path = dir.path().join(format!("{name}.pem"));
        write(&path, &params.self_signed(&key).unwrap().pem());
        path
    };
    let forever = pem("forever", (1950, 1, 1), (9999, 12, 31));
    let future = pem("future", (9999, 1, 1), (9999, 12, 31));
    let ancient = pem("ancient", (1950, 1, 1), (1950, 1, 2));

    let dest = dir.path().join("ca.crt");
    let step = CaBundle::new(&dest)
        .without_system_bundle()
        .pem_file(&forever)
        .pem_file(&future);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    assert_eq!(certificate_count(&fs::read_to_string(&dest).unwrap()), 2);

    let err = CaBundle::new(&dest)
        .without_system_bundle()
        .pem_file(&ancient)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate \"CN=ancient\" expired on 1950-01-02"),
        "{err}"
    );
}

#[tokio::test]
async fn owner_chowns_the_bundle_and_keeps_the_public_mode() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.pem");
    write(&extra, &ca_pem("corp root", false));
    let dest = dir.path().join("bundle.crt");
    let step = CaBundle::new(&dest)
        .without_system_bundle()
        .pem_file(&extra)
        .owner(1234, 5678);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    let meta = fs::metadata(&dest).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert_eq!(common::mode(&dest), 0o644 & !common::umask());
}
