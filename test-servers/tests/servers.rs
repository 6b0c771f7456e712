//! Each server starts, answers with the credentials it advertises, refuses wrong ones, and is
//! gone (process and directory) once its owner drops it or its test binary ends.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use test_servers::{MariaDb, OpenBao, Postgres, Redis};

/// Whether process `pid` still exists (a zombie counts as gone: it no longer runs).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits up to 20 s for `pid` to stop running and `dir` to be removed.
fn wait_gone(pid: u32, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while (running(pid) || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running(pid), "server {pid} still runs");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn postgres_accepts_its_superuser_and_refuses_a_wrong_password() {
    let Some(pg) = test_servers::postgres() else {
        return;
    };
    let url = pg.create_database("smoke");
    assert_eq!(
        url,
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/smoke",
            pg.password(),
            pg.port()
        )
    );
    assert_eq!(
        pg.query("smoke", "SELECT current_database()").unwrap(),
        "smoke"
    );
    assert!(
        pg.query("smoke", "SHOW server_version")
            .unwrap()
            .starts_with("15")
    );
    let refused = pg
        .query_as("postgres", "wrong", "smoke", "SELECT 1")
        .unwrap_err();
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
}

#[test]
fn mariadb_accepts_root_over_tcp_and_refuses_a_wrong_password() {
    let Some(db) = test_servers::mariadb() else {
        return;
    };
    db.create_database("smoke");
    assert_eq!(db.query("smoke", "SELECT DATABASE()").unwrap(), "smoke");
    assert!(
        db.query("smoke", "SELECT VERSION()")
            .unwrap()
            .starts_with("10.11")
    );
    let refused = db
        .query_as("root", "wrong", "smoke", "SELECT 1")
        .unwrap_err();
    assert!(refused.contains("Access denied"), "{refused}");
}

#[test]
fn redis_requires_its_password_and_knows_the_acl_user() {
    let Some(redis) = test_servers::redis() else {
        return;
    };
    assert_eq!(redis.cli(&["PING"]).unwrap(), "PONG");
    assert!(
        redis
            .cli(&["INFO", "server"])
            .unwrap()
            .contains("redis_version:7.")
    );
    let who = redis
        .cli(&["AUTH", redis.acl_user(), redis.acl_password()])
        .unwrap();
    assert_eq!(who, "OK");
    let refused = redis.cli(&["AUTH", redis.acl_user(), "wrong"]).unwrap_err();
    assert!(refused.contains("WRONGPASS"), "{refused}");
}

#[test]
fn openbao_dev_server_is_unsealed_and_takes_its_root_token() {
    let Some(bao) = test_servers::openbao() else {
        return;
    };
    let health = bao.api().token(None).read("sys/health");
    assert_eq!(health["sealed"], false);
    assert_eq!(health["version"], "2.7.2");
    let me = bao.api().read("auth/token/lookup-self");
    assert_eq!(me["data"]["policies"], json!(["root"]));
    let refused = bao
        .api()
        .token(Some("not-a-token"))
        .request("GET", "auth/token/lookup-self", None)
        .unwrap_err();
    assert_eq!(refused.status, 403, "{refused}");
}

#[test]
fn openbao_tls_listeners_serve_the_same_server() {
    let Some(bao) = test_servers::openbao_tls() else {
        return;
    };
    let tls = bao.tls().unwrap();
    for file in [tls.ca_file(), tls.client_cert_file(), tls.client_key_file()] {
        assert!(
            std::fs::read_to_string(file)
                .unwrap()
                .starts_with("-----BEGIN")
        );
    }
    assert!(tls.addr().starts_with("https://127.0.0.1:"));
    assert_ne!(tls.addr(), tls.mtls_addr());
    assert!(bao.log().contains("tls: \"enabled\""), "{}", bao.log());
}

#[test]
fn an_owned_server_stops_and_removes_its_directory_when_dropped() {
    let Some(redis) = Redis::start() else { return };
    let (pid, dir) = (redis.pid(), redis.dir().to_owned());
    assert!(running(pid));
    drop(redis);
    assert!(!running(pid), "dropped server {pid} still runs");
    assert!(!dir.exists());
}

#[test]
fn owned_servers_are_independent() {
    let Some(first) = Postgres::start() else {
        return;
    };
    let Some(second) = Postgres::start() else {
        return;
    };
    assert_ne!(first.port(), second.port());
    assert_ne!(first.password(), second.password());
    first.create_database("only_in_first");
    let listed = second
        .query("postgres", "SELECT datname FROM pg_database")
        .unwrap();
    assert!(!listed.contains("only_in_first"), "{listed}");
}

/// The child half of `servers_left_behind_by_an_ending_test_binary_are_stopped`: starts every
/// server, leaks it as a shared one is, prints its PID and directory, and exits.
#[test]
fn leak_servers_then_exit() {
    if std::env::var_os("TEST_SERVERS_LEAK").is_none() {
        return;
    }
    let bao = OpenBao::start().unwrap();
    let pg = Postgres::start().unwrap();
    let maria = MariaDb::start().unwrap();
    let redis = Redis::start().unwrap();
    for (pid, dir) in [
        (bao.pid(), bao.dir().to_owned()),
        (pg.pid(), pg.dir().to_owned()),
        (maria.pid(), maria.dir().to_owned()),
        (redis.pid(), redis.dir().to_owned()),
    ] {
        println!("leaked {pid} {}", dir.display());
    }
    // `exit` runs no destructor: the servers are left running, which is the point here.
    let _leaked = (bao, pg, maria, redis);
    std::process::exit(0);
}

#[test]
fn servers_left_behind_by_an_ending_test_binary_are_stopped() {
    // Skip (or fail under CI) as the others do when something is missing.
    let available = [
        test_servers::openbao().is_some(),
        test_servers::postgres().is_some(),
        test_servers::mariadb().is_some(),
        test_servers::redis().is_some(),
    ];
    if available.contains(&false) {
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "leak_servers_then_exit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TEST_SERVERS_LEAK", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let leaked: Vec<(u32, &Path)> = stdout
        .lines()
        .filter_map(|line| line.split_once("leaked ").map(|(_, rest)| rest))
        .map(|rest| {
            let (pid, dir) = rest.split_once(' ').unwrap();
            (pid.parse().unwrap(), Path::new(dir))
        })
        .collect();
    assert_eq!(leaked.len(), 4, "{stdout}");
    for (pid, dir) in leaked {
        wait_gone(pid, dir);
    }
}
