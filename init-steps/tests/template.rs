//! `Render`: templates rendered into real files, with real modes, checks and error messages.
#![cfg(feature = "template")]

#[path = "support/files_common.rs"]
mod common;

use std::fs;
use std::path::Path;

use init_core::{Context, Step, ValidateContext};
use init_steps::template::Render;
use serde_json::json;

fn ctx() -> Context {
    let ctx = Context::with_env([("HOME", "/home/app"), ("REGION", "eu-west-1")]);
    ctx.publish(
        "app",
        json!({ "name": "orders", "port": 8080, "hosts": ["a", "b"] }),
    );
    ctx.publish_secret(
        "db",
        json!({ "user": "orders", "password": "hunter2-s3cret" }),
    );
    ctx
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[tokio::test]
async fn renders_values_and_env_into_a_file_with_the_default_mode() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.toml.j2");
    write(
        &src,
        "name = \"{{ values.app.name }}\"\nport = {{ values.app.port }}\nhome = \"{{ env.HOME }}\"\n\
         hosts = {{ values.app.hosts | tojson }}\n",
    );
    let dest = dir.path().join("out/app.toml");
    let step = Render::file(&src, &dest);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&ctx()).await.unwrap();
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        "name = \"orders\"\nport = 8080\nhome = \"/home/app\"\nhosts = [\"a\",\"b\"]\n"
    );
    assert_eq!(common::mode(&dest), 0o644 & !common::umask());
    assert_eq!(common::names(&dir.path().join("out")), ["app.toml"]);
}

#[tokio::test]
async fn a_template_that_reads_a_secret_is_written_0600() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("db.env.j2");
    write(&src, "DB_PASSWORD={{ values.db.password }}\n");
    let dest = dir.path().join("db.env");
    Render::file(&src, &dest).run(&ctx()).await.unwrap();
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        "DB_PASSWORD=hunter2-s3cret\n"
    );
    assert_eq!(common::mode(&dest), 0o600);
}

#[tokio::test]
async fn an_explicit_mode_wins_over_the_secret_default() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("db.env.j2");
    write(&src, "{{ values.db.user }}");
    let dest = dir.path().join("db.env");
    Render::file(&src, &dest)
        .mode(0o640)
        .run(&ctx())
        .await
        .unwrap();
    assert_eq!(common::mode(&dest), 0o640);
}

#[tokio::test]
async fn unicode_and_whitespace_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("greeting.j2");
    let ctx = ctx();
    ctx.publish("greeting", "héllo — 日本語 🚀\ttab");
    write(&src, "« {{ values.greeting }} »\r\n  trailing  \n\n");
    let dest = dir.path().join("greeting.txt");
    Render::file(&src, &dest).run(&ctx).await.unwrap();
    assert_eq!(
        fs::read(&dest).unwrap(),
        "« héllo — 日本語 🚀\ttab »\r\n  trailing  \n\n".as_bytes()
    );
}

#[tokio::test]
async fn filters_default_required_base64_sha256_json_and_indent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.j2");
    write(
        &src,
        "{{ values.nope | default(\"fallback\") }}\n\
         {{ values.app.name | required(\"app name is required\") }}\n\
         {{ \"héllo\" | b64encode }} {{ \"aMOpbGxv\" | b64decode }}\n\
         {{ \"abc\" | sha256 }}\n\
         {{ values.app | tojson(2) }}\n\
         x:\n  {{ \"a\\nb\" | indent(2) }}\n",
    );
    let dest = dir.path().join("f.txt");
    Render::file(&src, &dest).run(&ctx()).await.unwrap();
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        "fallback\norders\naMOpbGxv héllo\n\
         ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n\
         {\n  \"hosts\": [\n    \"a\",\n    \"b\"\n  ],\n  \"name\": \"orders\",\n  \"port\": 8080\n}\n\
         x:\n  a\n  b\n"
    );
}

#[tokio::test]
async fn an_undefined_value_names_the_file_the_line_and_the_missing_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.toml.j2");
    write(
        &src,
        "user = {{ values.db.user }}\npassword = {{ values.db.pasword }}\n",
    );
    let dest = dir.path().join("app.toml");
    let err = Render::file(&src, &dest).run(&ctx()).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{}:2: undefined value values.db.pasword", src.display())
    );
    assert!(!dest.exists());

    write(&src, "{{ env.HOME }}\n\n{{ env.NOT_SET }}");
    let err = Render::file(&src, &dest).run(&ctx()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3: undefined value env.NOT_SET", src.display())
    );

    write(&src, "{% if values.vault.token %}x{% endif %}");
    let err = Render::file(&src, &dest).run(&ctx()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:1: undefined value values.vault", src.display())
    );

    write(&src, "{{ valeus.app }}");
    let err = Render::file(&src, &dest).run(&ctx()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:1: undefined value valeus", src.display())
    );

    // A missing value that `default` or `is defined` handled is not named by a later error.
    write(
        &src,
        "{{ values.opt | default(\"x\") }}{% if values.tls is defined %}{% endif %}\n\
         {{ values.app.name.first }}",
    );
    let err = Render::file(&src, &dest).run(&ctx()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:2: undefined value", src.display())
    );
}

#[tokio::test]
async fn required_fails_with_the_templates_message() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.j2");
    write(
        &src,
        "\n{{ values.app.region | default(none) | required(\"set values.app.region\") }}",
    );
    let err = Render::file(&src, dir.path().join("a"))
        .run(&ctx())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{}:2: set values.app.region", src.display())
    );
}

#[tokio::test]
async fn validate_finds_syntax_errors_and_unknown_filters_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("bad.j2");
    write(&src, "ok\n{{ values.app.name }\n");
    let err = Render::file(&src, dir.path().join("out"))
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: syntax error: unexpected `}}`, expected end of variable block",
            src.display()
        )
    );

    write(
        &src,
        "a\nb {{ \"x|nope\" }}\nc {{ values.app.name | upper | to_yaml }}\n",
    );
    let err = Render::file(&src, dir.path().join("out"))
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3: unknown filter \"to_yaml\"", src.display())
    );

    write(&src, "{% filter shout %}x{% endfilter %}");
    let err = Render::file(&src, dir.path().join("out"))
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:1: unknown filter \"shout\"", src.display())
    );
}

#[tokio::test]
async fn validate_refuses_a_bad_mode_a_missing_template_and_a_check_without_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.j2");
    write(&src, "x");
    let err = Render::file(&src, "/config/a")
        .mode(0o10644)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "render /config/a: mode 0o10644: expected permission bits between 0o000 and 0o7777"
    );

    let missing = dir.path().join("missing.j2");
    let err = Render::file(&missing, "/config/a")
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot read the template: no such file or directory",
            missing.display()
        )
    );

    let err = Render::file(&src, "/config/a")
        .check(["nginx", "-t"])
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "render /config/a: check command \"nginx -t\": expected a \"{}\" argument for the rendered file"
    );
}

#[tokio::test]
async fn renders_a_tree_keeping_paths_and_dropping_template_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("templates");
    write(&src.join("app.toml.j2"), "name={{ values.app.name }}\n");
    write(
        &src.join("conf.d/site.conf.tmpl"),
        "region={{ env.REGION }}\n",
    );
    write(
        &src.join("conf.d/secret.env.j2"),
        "{{ values.db.password }}",
    );
    write(&src.join("plain.txt"), "{{ 1 + 1 }}");
    write(
        &src.join("partials/_x.j2"),
        "{% include \"partials/inc.txt\" %}!",
    );
    write(&src.join("partials/inc.txt"), "included");
    // A ConfigMap volume's internals are skipped.
    write(&src.join("..2024_01_01/app.toml.j2"), "{{ broken");
    let dest = dir.path().join("config");
    let step = Render::dir(&src, &dest);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&ctx()).await.unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("app.toml")).unwrap(),
        "name=orders\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("conf.d/site.conf")).unwrap(),
        "region=eu-west-1\n"
    );
    assert_eq!(fs::read_to_string(dest.join("plain.txt")).unwrap(), "2");
    assert_eq!(
        fs::read_to_string(dest.join("partials/_x")).unwrap(),
        "included!"
    );
    assert_eq!(common::mode(&dest.join("conf.d/secret.env")), 0o600);
    assert_eq!(
        common::mode(&dest.join("conf.d/site.conf")),
        0o644 & !common::umask()
    );
    assert_eq!(
        common::names(&dest),
        ["app.toml", "conf.d", "partials", "plain.txt"]
    );
}

#[tokio::test]
async fn a_tree_never_writes_through_a_symlink_in_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("templates");
    write(&src.join("conf.d/site.conf.j2"), "x");
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let dest = dir.path().join("config");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("conf.d")).unwrap();
    let err = Render::dir(&src, &dest).run(&ctx()).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "render {}: {}: is a symlink; refusing to write through it",
            dest.display(),
            dest.join("conf.d").display()
        )
    );
    assert!(common::names(&outside).is_empty());
}

#[tokio::test]
async fn a_passing_check_sees_the_rendered_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nginx.conf.j2");
    write(&src, "listen {{ values.app.port }};\n");
    let dest = dir.path().join("nginx.conf");
    let seen = dir.path().join("seen");
    let script = format!("cp \"$1\" {}", seen.display());
    Render::file(&src, &dest)
        .check(["sh", "-c", &script, "sh", "{}"])
        .run(&ctx())
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&seen).unwrap(), "listen 8080;\n");
    assert_eq!(fs::read_to_string(&dest).unwrap(), "listen 8080;\n");
}

#[tokio::test]
async fn a_failing_check_keeps_the_old_file_and_shows_redacted_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("db.conf.j2");
    write(&src, "password {{ values.db.password }}\n");
    let dest = dir.path().join("db.conf");
    fs::write(&dest, "old").unwrap();
    let script = "echo 'line one' >&2; echo \"bad directive: $(cat \"$1\")\" >&2; exit 3";
    let err = Render::file(&src, &dest)
        .check(["sh", "-c", script, "sh", "{}"])
        .run(&ctx())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "{}: check \"sh -c {script} sh {{}}\" failed (exit status 3): \
             line one / bad directive: password [redacted]",
            dest.display()
        )
    );
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
    assert_eq!(common::names(dir.path()), ["db.conf", "db.conf.j2"]);
}

#[tokio::test]
async fn a_check_that_cannot_start_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.j2");
    write(&src, "x");
    let dest = dir.path().join("a");
    let err = Render::file(&src, &dest)
        .check(["/nonexistent/checker", "{}"])
        .run(&ctx())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert!(
        err.to_string().starts_with(&format!(
            "{}: check \"/nonexistent/checker {{}}\": cannot start it: no such file",
            dest.display()
        )),
        "{err}"
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn envsubst_substitutes_variables_defaults_and_dollars() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("site.conf.tmpl");
    write(
        &src,
        "home=${HOME}\nzone=${ZONE:-a}\nempty=${EMPTY:-dflt}|${EMPTY-kept}\ncost=$$5 $host ${REGION}\n",
    );
    let dest = dir.path().join("site.conf");
    let ctx = Context::with_env([("HOME", "/home/app"), ("REGION", "eu"), ("EMPTY", "")]);
    let step = Render::file(&src, &dest).envsubst();
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&ctx).await.unwrap();
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        "home=/home/app\nzone=a\nempty=dflt|\ncost=$5 $host eu\n"
    );
}

#[tokio::test]
async fn envsubst_is_strict_on_unset_variables_and_checks_syntax_in_validate() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.tmpl");
    write(&src, "a=${HOME}\nb=${DATABASE_URL}\n");
    let dest = dir.path().join("a");
    let err = Render::file(&src, &dest)
        .envsubst()
        .run(&Context::with_env([("HOME", "/")]))
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{}:2: variable DATABASE_URL is not set", src.display())
    );
    assert!(!dest.exists());

    write(&src, "a=1\nb=${DATABASE_URL\n");
    let err = Render::file(&src, &dest)
        .envsubst()
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        format!("{}:2: \"${{\" is not closed by \"}}\"", src.display())
    );
}

#[tokio::test]
async fn check_output_masks_a_secret_across_the_400_character_cut() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.conf.j2");
    write(&src, "x\n");
    let dest = dir.path().join("a.conf");
    let secret = "s3cr3t-at-the-400-character-cut";
    let ctx = Context::new();
    ctx.register_secret(secret);
    // The check prints the secret (read from a file, so the command line does not hold it)
    // and 390 more characters: cut to 400 first, its head would be left unmasked.
    let file = dir.path().join("secret.txt");
    fs::write(&file, secret).unwrap();
    let script = format!(
        "printf \"$(cat {})%390s\" '' | tr ' ' y >&2; exit 1",
        file.display()
    );
    let err = Render::file(&src, &dest)
        .check(["sh", "-c", &script, "sh", "{}"])
        .run(&ctx)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(!message.contains("400-character-cut"), "{message}");
    assert!(!message.contains("cut"), "{message}");
}

#[tokio::test]
async fn a_template_reading_a_secret_env_var_is_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (name, body, syntax) in [
        ("jinja", "{{ env.DB_PASSWORD }}\n", false),
        ("envsubst", "${DB_PASSWORD}\n", true),
    ] {
        let src = dir.path().join(format!("{name}.j2"));
        write(&src, body);
        let dest = dir.path().join(name);
        let ctx = Context::with_env([("DB_PASSWORD", "hunter2-pass")]);
        let render = Render::file(&src, &dest);
        let render = if syntax { render.envsubst() } else { render };
        render.run(&ctx).await.unwrap();
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

/// Whether process `pid` is still running (not gone, not a zombie waiting for its reaper).
fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

#[tokio::test]
async fn a_check_command_is_stopped_with_its_process_group_when_the_attempt_times_out() {
    use init_core::{Outcome, Plan, Retry, StepExt, StepStatus};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.conf.j2");
    write(&src, "port {{ values.app.port }}\n");
    let dest = dir.path().join("app.conf");
    let seen = dir.path().join("seen-env");
    let pid_file = dir.path().join("sleep.pid");
    // The check records the variable it got from the context, then hangs on a background
    // process of its group.
    let script = format!(
        "printf %s \"$CHECK_MARK\" > {seen}; sleep 1000 & echo $! > {pid}.tmp; mv {pid}.tmp {pid}; wait",
        seen = seen.display(),
        pid = pid_file.display()
    );
    let ctx = Context::with_env([("CHECK_MARK", "from-the-context")]);
    ctx.publish("app", json!({ "port": 8080 }));
    let step = Render::file(&src, &dest)
        .check(["sh", "-c", &script, "sh", "{}"])
        .retry(Retry::never())
        .attempt_timeout(Duration::from_secs(2));
    let report = Plan::new("p").step(step).run(&ctx).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:?}");
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert_eq!(
        report.steps[0].error.as_deref(),
        Some("attempt timed out after 2.0s")
    );
    assert_eq!(fs::read_to_string(&seen).unwrap(), "from-the-context");
    assert!(!dest.exists());
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGTERM to the group at the timeout; give the kernel a moment to deliver it.
    let mut stopped = false;
    for _ in 0..1000 {
        if !is_running(pid) {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stopped, "the check's sleep (pid {pid}) is still running");
    assert_eq!(report.steps[0].attempts, 1);
}
