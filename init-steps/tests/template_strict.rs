//! Strict means strict: no filter turns an undefined value into output, and each failure names
//! the variable and the template's file and line. Real template files, rendered by `Render`.
#![cfg(feature = "template")]

use std::fs;

use init_core::{Context, Step};
use init_steps::template::Render;
use serde_json::json;

fn ctx() -> Context {
    let ctx = Context::with_env([("HOME", "/home/app")]);
    ctx.publish(
        "db",
        json!({ "username": "orders", "password": "hunter2", "hosts": ["a", "b"] }),
    );
    ctx
}

/// Renders `line` as the second line of a template; the output, or the error with the
/// template's path written `T`.
async fn render(line: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.conf.j2");
    fs::write(&src, format!("# app\n{line}\n")).unwrap();
    let dest = dir.path().join("app.conf");
    match Render::file(&src, &dest).run(&ctx()).await {
        Ok(()) => Ok(fs::read_to_string(&dest).unwrap()),
        Err(err) => {
            assert!(err.is_permanent(), "{err}");
            assert!(!dest.exists());
            Err(err.to_string().replace(&src.display().to_string(), "T"))
        }
    }
}

const TYPO: &str = "T:2: undefined value values.db.pasword";

#[tokio::test]
async fn tojson_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | tojson }}")
            .await
            .unwrap_err(),
        TYPO
    );
    assert_eq!(
        render("{{ values.db.pasword | tojson(2) }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn tojson_on_a_list_or_map_holding_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ {\"password\": values.db.pasword} | tojson }}")
            .await
            .unwrap_err(),
        TYPO
    );
    assert_eq!(
        render("{{ [values.db.username, values.db.pasword] | tojson }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn indent_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | indent(2) }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn b64encode_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | b64encode }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn b64decode_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | b64decode }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn sha256_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | sha256 }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn required_without_a_message_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | required }}")
            .await
            .unwrap_err(),
        TYPO
    );
    assert_eq!(
        render("{{ values.db.pasword | required(\"set the password\") }}")
            .await
            .unwrap_err(),
        "T:2: set the password"
    );
}

#[tokio::test]
async fn join_on_an_undefined_value_fails_naming_it() {
    // minijinja's own `join` prints nothing for it.
    assert_eq!(
        render("{{ values.db.pasword | join(\",\") }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn escape_on_an_undefined_value_fails_naming_it() {
    assert_eq!(
        render("{{ values.db.pasword | escape }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn pprint_on_an_undefined_value_fails_naming_it() {
    // minijinja's own `pprint` prints `undefined`.
    assert_eq!(
        render("{{ values.db.pasword | pprint }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn length_on_an_undefined_value_fails_naming_it() {
    // minijinja's own `length` fails without saying the value was undefined.
    assert_eq!(
        render("{{ values.db.pasword | length }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn chain_and_zip_with_an_undefined_argument_fail_naming_it() {
    assert_eq!(
        render("{{ values.db.hosts | chain(values.db.pasword) | list }}")
            .await
            .unwrap_err(),
        TYPO
    );
    assert_eq!(
        render("{{ values.db.hosts | zip(values.db.pasword) | list }}")
            .await
            .unwrap_err(),
        TYPO
    );
}

#[tokio::test]
async fn every_built_in_filter_on_an_undefined_value_fails_naming_it() {
    for filter in [
        "safe",
        "escape",
        "e",
        "lower",
        "upper",
        "title",
        "capitalize",
        "replace(\"a\", \"b\")",
        "length",
        "count",
        "dictsort",
        "items",
        "reverse",
        "trim",
        "join",
        "split",
        "lines",
        "round",
        "abs",
        "int",
        "float",
        "attr(\"x\")",
        "first",
        "last",
        "min",
        "max",
        "sort",
        "list",
        "string",
        "bool",
        "batch(2)",
        "slice(2)",
        "sum",
        "indent(2)",
        "select",
        "reject",
        "selectattr(\"x\")",
        "rejectattr(\"x\")",
        "map(\"upper\")",
        "groupby(\"x\")",
        "unique",
        "chain",
        "zip",
        "pprint",
        "format",
        "tojson",
        "b64encode",
        "b64decode",
        "sha256",
        "required",
    ] {
        assert_eq!(
            render(&format!("{{{{ values.db.pasword | {filter} }}}}")).await,
            Err(TYPO.to_owned()),
            "{filter}"
        );
    }
}

#[tokio::test]
async fn wrapped_filters_keep_their_arguments_and_keyword_arguments() {
    assert_eq!(
        render(
            "{{ values.db.hosts | join(\"+\") }} {{ \"a\\nb\" | indent(2, first=true) }} \
             {{ values.db.hosts | chain([\"c\"]) | list | length }} \
             {{ [{\"n\": 2}, {\"n\": 1}] | sort(attribute=\"n\") | map(attribute=\"n\") | join }} \
             {{ values.db | dictsort | first | first }}"
        )
        .await
        .unwrap(),
        "# app\na+b   a\n  b 3 12 hosts\n"
    );
}
