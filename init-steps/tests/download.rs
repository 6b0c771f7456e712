//! `Download` against a real loopback HTTP(S) server: checksums, size caps, status classes,
//! atomic files and hostile tarballs.
#![cfg(feature = "download")]

#[path = "support/files_common.rs"]
mod common;
#[allow(unreachable_pub)] // Shared with the HTTP tests.
mod support {
    pub mod logs;
    pub mod tls_server;
}

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use init_core::{Context, Step, ValidateContext};
use init_steps::download::Download;
use sha2::Digest;

fn payload() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One tar entry for [`tar_gz`]; paths and link targets are written as raw header bytes, so
/// hostile ones (`../x`, `/etc/x`) can be built too.
enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    /// An extension header (GNU long name `L` or link `K`, pax `x` or `g`) with its data;
    /// `declared` is the size its header claims (the data's length when `None`).
    Meta(tar::EntryType, &'a [u8], Option<u64>),
}

fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (path, data, link): (&str, &[u8], Option<&str>) = match *entry {
            Entry::File(path, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                (path, data, None)
            }
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (path, &[], None)
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                (path, &[], Some(target))
            }
            Entry::Hardlink(path, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                (path, &[], Some(target))
            }
            Entry::Fifo(path) => {
                header.set_entry_type(tar::EntryType::Fifo);
                header.set_mode(0o644);
                (path, &[], None)
            }
            Entry::Meta(kind, data, declared) => {
                header.set_entry_type(kind);
                header.set_mode(0o644);
                let old = header.as_old_mut();
                old.name = [0; 100];
                old.name[..13].copy_from_slice(b"././@LongLink");
                header.set_size(declared.unwrap_or(data.len() as u64));
                header.set_cksum();
                builder.append(&header, data).unwrap();
                continue;
            }
        };
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn good_archive() -> Vec<u8> {
    tar_gz(&[
        Entry::Dir("./"),
        Entry::Dir("tool/"),
        Entry::File("tool/bin/run", b"#!/bin/sh\necho hi\n", 0o755),
        Entry::File("tool/README", "ünïcødé\n".as_bytes(), 0o644),
        Entry::Symlink("tool/run", "bin/run"),
        Entry::Hardlink("tool/README.txt", "tool/README"),
    ])
}

fn archive_route(bytes: Vec<u8>) -> axum::routing::MethodRouter {
    get(move || {
        let bytes = bytes.clone();
        async move { ([(header::CONTENT_TYPE, "application/gzip")], bytes) }
    })
}

fn router() -> Router {
    Router::new()
        .route("/tool", get(|| async { payload() }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/busy",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE.into_response() }),
        )
        .route(
            "/gone-retry-later",
            get(|| async { (StatusCode::NOT_FOUND, [(header::RETRY_AFTER, "7")]) }),
        )
        .route(
            "/busy-retry-later",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "7")],
                )
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/tool") }))
        .route("/good.tar.gz", archive_route(good_archive()))
        .route(
            "/dotdot.tar.gz",
            archive_route(tar_gz(&[
                Entry::File("fine", b"x", 0o644),
                Entry::File("../evil", b"x", 0o644),
            ])),
        )
        .route(
            "/absolute.tar.gz",
            archive_route(tar_gz(&[Entry::File("/tmp/initkit-evil", b"x", 0o644)])),
        )
        .route(
            "/symlink-out.tar.gz",
            archive_route(tar_gz(&[
                Entry::Dir("a/"),
                Entry::Symlink("a/etc", "../../etc"),
            ])),
        )
        .route(
            "/through-link.tar.gz",
            archive_route(tar_gz(&[
                Entry::Dir("sub/"),
                Entry::Symlink("link", "sub"),
                Entry::File("link/x", b"x", 0o644),
            ])),
        )
        .route(
            "/hardlink-out.tar.gz",
            archive_route(tar_gz(&[Entry::Hardlink("passwd", "../../etc/passwd")])),
        )
        .route(
            "/fifo.tar.gz",
            archive_route(tar_gz(&[Entry::Fifo("pipe")])),
        )
        .route(
            "/zeros.tar.gz",
            archive_route(tar_gz(&[Entry::File("zeros", &[0; 200_000], 0o644)])),
        )
}

/// One pax record: `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
    let mut length = body.len() + 1;
    while format!("{length}").len() + body.len() != length {
        length += 1;
    }
    [format!("{length}").into_bytes(), body].concat()
}

/// Serves each archive under `/<name>.tar.gz`.
async fn serve_archives(archives: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
    let mut router = Router::new();
    for (name, bytes) in archives {
        router = router.route(&format!("/{name}.tar.gz"), archive_route(bytes));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Unpacks `/<name>.tar.gz` from `addr` into `dest`.
async fn unpack_into(
    addr: SocketAddr,
    name: &str,
    dest: &Path,
) -> Result<(), init_core::StepError> {
    Download::new(format!("http://{addr}/{name}.tar.gz"), dest)
        .insecure_skip_checksum()
        .unpack_tar_gz()
        .run(&Context::new())
        .await
}

async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router()).await.unwrap() });
    addr
}

#[tokio::test]
async fn downloads_a_pinned_file_atomically_with_its_mode() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bin/tool");
    let step = Download::new(format!("http://{addr}/tool"), &dest)
        .sha256(sha256_hex(&payload()).to_uppercase())
        .mode(0o755);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());
    assert_eq!(common::mode(&dest), 0o755);
    assert_eq!(common::names(&dir.path().join("bin")), ["tool"]);
    // A rerun gives the same file.
    step.run(&Context::new()).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());
}

#[tokio::test]
async fn follows_a_redirect() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    Download::new(format!("http://{addr}/moved"), &dest)
        .sha256(sha256_hex(&payload()))
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());
}

#[tokio::test]
async fn a_checksum_mismatch_is_permanent_and_keeps_the_old_file() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    fs::write(&dest, "old").unwrap();
    let wrong = "0".repeat(64);
    let err = Download::new(format!("http://{addr}/tool"), &dest)
        .sha256(&wrong)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "http://{addr}/tool: sha256 mismatch: expected {wrong}, got {}",
            sha256_hex(&payload())
        )
    );
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
    assert_eq!(common::names(dir.path()), ["tool"]);
}

#[tokio::test]
async fn client_errors_are_permanent_and_server_errors_transient() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x");
    let err = Download::new(format!("http://{addr}/missing"), &dest)
        .insecure_skip_checksum()
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("http://{addr}/missing: HTTP 404 Not Found")
    );

    let err = Download::new(format!("http://{addr}/busy"), &dest)
        .insecure_skip_checksum()
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("http://{addr}/busy: HTTP 503 Service Unavailable")
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn retry_after_is_attached_to_transient_statuses_only() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = |path: &str| {
        Download::new(format!("http://{addr}/{path}"), dir.path().join("x"))
            .insecure_skip_checksum()
    };
    let gone = fetch("gone-retry-later")
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(gone.is_permanent());
    assert_eq!(gone.retry_after(), None);
    assert_eq!(
        gone.to_string(),
        format!("http://{addr}/gone-retry-later: HTTP 404 Not Found")
    );
    let busy = fetch("busy-retry-later")
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(busy.is_transient());
    assert_eq!(busy.retry_after(), Some(std::time::Duration::from_secs(7)));
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let err = Download::new(format!("http://{addr}/tool"), dir.path().join("x"))
        .insecure_skip_checksum()
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .starts_with(&format!("http://{addr}/tool: connection refused")),
        "{err}"
    );
}

#[tokio::test]
async fn a_resource_over_the_size_cap_is_refused() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    let err = Download::new(format!("http://{addr}/tool"), &dest)
        .insecure_skip_checksum()
        .max_size(100_000)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("http://{addr}/tool: larger than the 100000-byte limit")
    );
    assert!(common::names(dir.path()).is_empty());
}

/// A server that sends [`payload`] in chunks, without a `Content-Length` (the size cap must
/// then be enforced while the body streams).
async fn serve_chunked() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0; 4096];
                let _ = socket.read(&mut request).await;
                let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
                                     Connection: close\r\n\r\n"
                    .to_vec();
                for chunk in payload().chunks(16 * 1024) {
                    response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    response.extend_from_slice(chunk);
                    response.extend_from_slice(b"\r\n");
                }
                response.extend_from_slice(b"0\r\n\r\n");
                // The client hangs up once the cap is passed.
                let _ = socket.write_all(&response).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_streamed_resource_over_the_size_cap_is_refused() {
    let addr = serve_chunked().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    let step = Download::new(format!("http://{addr}/tool"), &dest).sha256(sha256_hex(&payload()));
    let err = step
        .clone()
        .max_size(100_000)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("http://{addr}/tool: larger than the 100000-byte limit")
    );
    assert!(common::names(dir.path()).is_empty());
    // Under the cap, the same stream is downloaded whole.
    step.run(&Context::new()).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());
}

#[tokio::test]
async fn an_archive_unpacking_over_the_size_cap_is_refused() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let url = format!("http://{addr}/zeros.tar.gz");
    let err = Download::new(&url, &dest)
        .insecure_skip_checksum()
        .unpack_tar_gz()
        .max_size(100_000)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{url}: archive: unpacks to more than the 100000-byte limit")
    );
    assert!(
        !dest.exists(),
        "the directory this download created is removed"
    );
}

#[tokio::test]
async fn validate_refuses_unpinned_downloads_and_bad_input() {
    let cases = [
        (
            Download::new("https://example.com/a", "/data/a"),
            "download /data/a: expected a sha256 to check the download against (or \
             insecure_skip_checksum() to waive it)",
        ),
        (
            Download::new("https://example.com/a", "/data/a").sha256("abc"),
            "download /data/a: sha256 \"abc\": expected 64 hex digits",
        ),
        (
            Download::new("ftp://example.com/a", "/data/a").insecure_skip_checksum(),
            "download /data/a: URL ftp://example.com/a: expected an http or https URL",
        ),
        (
            Download::new("https://example.com/a.tgz", "/opt/a")
                .insecure_skip_checksum()
                .unpack_tar_gz()
                .mode(0o755),
            "download /opt/a: mode: unpacked files keep the archive's modes; expected no mode \
             with unpack_tar_gz()",
        ),
        (
            Download::new("https://example.com/a", "/data/a")
                .insecure_skip_checksum()
                .mode(0o20000),
            "download /data/a: mode 0o20000: expected permission bits between 0o000 and 0o7777",
        ),
    ];
    for (step, message) in cases {
        let err = step.validate(&ValidateContext::process()).unwrap_err();
        assert!(err.is_invalid());
        assert_eq!(err.to_string(), message);
    }
}

#[tokio::test]
async fn unpacks_a_tarball_with_modes_links_and_unicode() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("opt");
    let step = Download::new(format!("http://{addr}/good.tar.gz"), &dest)
        .sha256(sha256_hex(&good_archive()))
        .unpack_tar_gz();
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    // A rerun over the unpacked tree (links included) succeeds too.
    step.run(&Context::new()).await.unwrap();
    let tool = dest.join("tool");
    assert_eq!(common::names(&tool), ["README", "README.txt", "bin", "run"]);
    assert_eq!(
        fs::read_to_string(tool.join("bin/run")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(common::mode(&tool.join("bin/run")), 0o755);
    assert_eq!(
        fs::read_link(tool.join("run")).unwrap(),
        Path::new("bin/run")
    );
    assert_eq!(
        fs::read_to_string(tool.join("README.txt")).unwrap(),
        "ünïcødé\n"
    );
    assert_eq!(
        fs::metadata(tool.join("README")).unwrap().ino(),
        fs::metadata(tool.join("README.txt")).unwrap().ino()
    );
    // The downloaded archive itself leaves nothing behind.
    assert_eq!(common::names(&dest), ["tool"]);
}

#[tokio::test]
async fn hostile_tarballs_are_refused_before_anything_is_written() {
    let addr = serve().await;
    let cases = [
        ("dotdot", "entry \"../evil\": \"..\" is not allowed"),
        (
            "absolute",
            "entry \"/tmp/initkit-evil\": absolute paths are not allowed",
        ),
        (
            "symlink-out",
            "entry \"a/etc\": symlink target \"../../etc\" points outside the directory",
        ),
        (
            "through-link",
            "entry \"link/x\": goes through the symlink \"link\"",
        ),
        (
            "hardlink-out",
            "entry \"passwd\": hard link target \"../../etc/passwd\": \"..\" is not allowed",
        ),
        ("fifo", "entry \"pipe\": unsupported entry type Fifo"),
    ];
    for (name, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let url = format!("http://{addr}/{name}.tar.gz");
        let err = Download::new(&url, &dest)
            .insecure_skip_checksum()
            .unpack_tar_gz()
            .run(&Context::new())
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{name}");
        assert_eq!(err.to_string(), format!("{url}: archive: {what}"), "{name}");
        assert!(
            common::names(dir.path()).is_empty(),
            "{name}: something was written (or the directory this download made was left)"
        );
    }
    assert!(!Path::new("/tmp/initkit-evil").exists());
}

#[tokio::test]
async fn an_existing_symlink_in_the_destination_is_never_written_through() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("opt");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("tool")).unwrap();
    let url = format!("http://{addr}/good.tar.gz");
    let err = Download::new(&url, &dest)
        .insecure_skip_checksum()
        .unpack_tar_gz()
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: archive: {}: is a symlink; refusing to write through it",
            dest.join("tool").display()
        )
    );
    assert!(common::names(&outside).is_empty());
}

#[tokio::test]
async fn trusts_a_private_ca_only_through_the_extra_ca_file() {
    use support::tls_server::{TestCa, serve_tls};
    let ca = TestCa::new("initkit test CA");
    let server = ca.issue_server(&["127.0.0.1"]);
    let addr = serve_tls(router(), &server, None).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    let url = format!("https://{addr}/tool");

    let err = Download::new(&url, &dest)
        .sha256(sha256_hex(&payload()))
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("unknown issuer"), "{err}");
    assert!(!dest.exists());

    let ca_file = ca.write(dir.path(), "ca");
    Download::new(&url, &dest)
        .sha256(sha256_hex(&payload()))
        .ca_file(ca_file)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());
}

#[tokio::test]
async fn builds_its_client_once_and_reuses_it_across_attempts() {
    use support::tls_server::{TestCa, serve_tls};
    let ca = TestCa::new("initkit test CA");
    let addr = serve_tls(router(), &ca.issue_server(&["127.0.0.1"]), None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca");
    let dest = dir.path().join("tool");
    let step = Download::new(format!("https://{addr}/tool"), &dest)
        .sha256(sha256_hex(&payload()))
        .ca_file(&ca_file);
    step.run(&Context::new()).await.unwrap();

    // The second attempt reuses the client built by the first: the CA file it read then is
    // not read again (a client built per attempt would fail here, naming the missing file).
    fs::remove_file(&ca_file).unwrap();
    fs::remove_file(&dest).unwrap();
    step.run(&Context::new()).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), payload());

    // A copy of the builder gets its own client, and reads the CA file again.
    let err = step.clone().run(&Context::new()).await.unwrap_err();
    assert!(err.to_string().contains("CA file"), "{err}");
}

#[test]
fn download_debug_shows_no_url_credentials() {
    let step = init_steps::download::Download::new(
        "https://user:hunter2-pass@example.com/tool?X-Amz-Signature=abc123sig",
        "/shared/tool",
    );
    let debug = format!("{step:?}");
    assert!(debug.contains("https://user@example.com/tool"), "{debug}");
    assert!(
        !debug.contains("hunter2-pass") && !debug.contains("abc123sig"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_redirect_loop_or_a_redirect_down_to_http_is_permanent() {
    use support::tls_server::{TestCa, serve_tls};
    let looping = Router::new().route("/loop", get(|| async { Redirect::temporary("/loop") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let loop_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, looping).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");

    let url = format!("http://{loop_addr}/loop");
    let err = Download::new(&url, &dest)
        .sha256(sha256_hex(&payload()))
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.to_string(), format!("{url}: more than 10 redirects"));

    let plain = serve().await;
    let location = format!("http://127.0.0.1:{}/tool", plain.port());
    let downgrade = Router::new().route(
        "/tool",
        get(move || {
            let location = location.clone();
            async move { Redirect::permanent(&location) }
        }),
    );
    let ca = TestCa::new("initkit test CA");
    let addr = serve_tls(downgrade, &ca.issue_server(&["127.0.0.1"]), None).await;
    let url = format!("https://{addr}/tool");
    let err = Download::new(&url, &dest)
        .sha256(sha256_hex(&payload()))
        .ca_file(ca.write(dir.path(), "ca"))
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{url}: refusing a redirect from https to plain http")
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_ca_file_is_checked_when_it_exists_and_missing_at_run_time_is_permanent() {
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("tool");
    let not_pem = dir.path().join("ca.pem");
    fs::write(&not_pem, "not a certificate\n").unwrap();
    let step = Download::new(format!("https://{addr}/tool"), &dest)
        .sha256(sha256_hex(&payload()))
        .ca_file(&not_pem);
    let err = step.validate(&ValidateContext::process()).unwrap_err();
    assert!(err.is_invalid(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "download {}: CA file {}: expected PEM certificates (-----BEGIN CERTIFICATE-----), \
             found none",
            dest.display(),
            not_pem.display()
        )
    );

    // Not there yet: an earlier step may write it, so validation passes; still missing when
    // the step runs, it is permanent (no five retries over seconds).
    let later = dir.path().join("later.pem");
    let step = Download::new(format!("https://{addr}/tool"), &dest)
        .sha256(sha256_hex(&payload()))
        .ca_file(&later);
    step.validate(&ValidateContext::process()).unwrap();
    let err = step.run(&Context::new()).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "download {}: CA file {}: no such file or directory",
            dest.display(),
            later.display()
        )
    );
}

#[tokio::test]
async fn a_symlink_chained_through_another_is_refused_when_it_leaves_the_directory() {
    let chained = || {
        vec![
            Entry::Dir("sub/"),
            Entry::Symlink("sub/up", ".."),
            Entry::Symlink("esc", "sub/up/.."),
        ]
    };
    let mut reversed = chained();
    reversed.reverse();
    let addr = serve_archives(vec![
        ("chained", tar_gz(&chained())),
        // The escaping link comes first; the link that makes it escape is placed later.
        ("reversed", tar_gz(&reversed)),
        (
            "deeper",
            tar_gz(&[
                Entry::Dir("a/b/"),
                Entry::Symlink("a/b/top", "../.."),
                Entry::Symlink("a/hop", "b/top"),
                Entry::Symlink("x", "a/hop/.."),
            ]),
        ),
        (
            "loop",
            tar_gz(&[Entry::Symlink("p", "q/x"), Entry::Symlink("q", "p")]),
        ),
    ])
    .await;
    let cases = [
        (
            "chained",
            "entry \"esc\": symlink target \"sub/up/..\" points outside the directory",
        ),
        (
            "reversed",
            "entry \"esc\": symlink target \"sub/up/..\" points outside the directory",
        ),
        (
            "deeper",
            "entry \"x\": symlink target \"a/hop/..\" points outside the directory",
        ),
        (
            "loop",
            "entry \"p\": symlink target \"q/x\" goes through too many symlinks",
        ),
    ];
    for (name, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let err = unpack_into(addr, name, &dest).await.unwrap_err();
        assert!(err.is_permanent(), "{name}");
        assert_eq!(
            err.to_string(),
            format!("http://{addr}/{name}.tar.gz: archive: {what}"),
            "{name}"
        );
        assert!(!dest.exists(), "{name}: something was written");
    }
}

#[tokio::test]
async fn a_symlink_chained_through_one_already_on_disk_is_refused() {
    let addr = serve_archives(vec![("esc", tar_gz(&[Entry::Symlink("esc", "sub/up/..")]))]).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    fs::create_dir_all(dest.join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dest.join("sub/up")).unwrap();
    let err = unpack_into(addr, "esc", &dest).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "http://{addr}/esc.tar.gz: archive: entry \"esc\": symlink target \"sub/up/..\" \
             points outside the directory"
        )
    );
    assert!(!dest.join("esc").exists());
}

#[tokio::test]
async fn symlinks_chained_inside_the_directory_are_unpacked() {
    let addr = serve_archives(vec![(
        "inside",
        tar_gz(&[
            Entry::Dir("tool/bin/"),
            Entry::File("tool/bin/run", b"run", 0o755),
            Entry::Symlink("tool/up", ".."),
            Entry::Symlink("tool/latest", "bin"),
            Entry::Symlink("tool/current", "latest/run"),
            Entry::Symlink("again", "tool/up/tool/current"),
        ]),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    unpack_into(addr, "inside", &dest).await.unwrap();
    assert_eq!(fs::read_to_string(dest.join("again")).unwrap(), "run");
    assert_eq!(
        fs::read_to_string(dest.join("tool/current")).unwrap(),
        "run"
    );
}

#[tokio::test]
async fn long_names_and_pax_paths_within_the_caps_are_unpacked() {
    let long = format!("{}/{}/file", "d".repeat(200), "e".repeat(200));
    let mut long_name = long.clone().into_bytes();
    long_name.push(0);
    let pax = [
        pax_record("path", b"pax/named"),
        pax_record("mtime", b"1700000000.5"),
    ]
    .concat();
    let addr = serve_archives(vec![(
        "long",
        tar_gz(&[
            Entry::Meta(tar::EntryType::GNULongName, &long_name, None),
            Entry::File("short-name-ignored", b"long", 0o644),
            Entry::Meta(tar::EntryType::XHeader, &pax, None),
            Entry::File("ignored-too", b"pax", 0o600),
            Entry::Meta(tar::EntryType::GNULongLink, b"pax/named\0", None),
            Entry::Symlink("link", ""),
        ]),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    unpack_into(addr, "long", &dest).await.unwrap();
    assert_eq!(fs::read_to_string(dest.join(&long)).unwrap(), "long");
    assert_eq!(fs::read_to_string(dest.join("pax/named")).unwrap(), "pax");
    assert_eq!(common::mode(&dest.join("pax/named")), 0o600);
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        Path::new("pax/named")
    );
    assert_eq!(
        common::names(&dest),
        ["d".repeat(200), "link".into(), "pax".into()]
    );
}

#[tokio::test]
async fn oversized_extension_headers_are_refused_before_they_are_read() {
    // Each header claims far more than it holds: the cap must refuse the claim, not read it
    // (reading would end in an unexpected end of file instead).
    let claim = Some(64 << 20);
    let pax_path = pax_record("path", &vec![b'p'; 5000]);
    let addr = serve_archives(vec![
        (
            "long-name",
            tar_gz(&[Entry::Meta(tar::EntryType::GNULongName, b"x", claim)]),
        ),
        (
            "long-link",
            tar_gz(&[Entry::Meta(tar::EntryType::GNULongLink, b"x", claim)]),
        ),
        (
            "pax",
            tar_gz(&[Entry::Meta(tar::EntryType::XHeader, b"x", claim)]),
        ),
        (
            "pax-global",
            tar_gz(&[Entry::Meta(
                tar::EntryType::XGlobalHeader,
                b"x",
                Some(1 << 20),
            )]),
        ),
        (
            "pax-path",
            tar_gz(&[
                Entry::Meta(tar::EntryType::XHeader, &pax_path, None),
                Entry::File("f", b"x", 0o644),
            ]),
        ),
        (
            "dangling",
            tar_gz(&[Entry::Meta(tar::EntryType::GNULongName, b"name\0", None)]),
        ),
    ])
    .await;
    let cases = [
        (
            "long-name",
            "GNU long name of 67108864 bytes: expected at most 4096",
        ),
        (
            "long-link",
            "GNU long link of 67108864 bytes: expected at most 4096",
        ),
        (
            "pax",
            "pax header of 67108864 bytes: expected at most 16384",
        ),
        (
            "pax-global",
            "pax header of 1048576 bytes: expected at most 16384",
        ),
        ("pax-path", "pax path of 5000 bytes: expected at most 4096"),
        ("dangling", "an extension header with no entry after it"),
    ];
    for (name, what) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let err = unpack_into(addr, name, &dest).await.unwrap_err();
        assert!(err.is_permanent(), "{name}");
        assert_eq!(
            err.to_string(),
            format!("http://{addr}/{name}.tar.gz: archive: {what}"),
            "{name}"
        );
        assert!(!dest.exists(), "{name}");
    }
}

#[tokio::test]
async fn a_64_mib_long_name_is_refused_with_a_short_message() {
    // The issue's case: a small .tar.gz whose GNU long name is 64 MiB.
    let name = vec![b'a'; 64 << 20];
    let archive = tar_gz(&[
        Entry::Meta(tar::EntryType::GNULongName, &name, None),
        Entry::File("x", b"x", 0o644),
    ]);
    assert!(archive.len() < 1 << 20, "{} bytes", archive.len());
    let addr = serve_archives(vec![("huge-name", archive)]).await;
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_into(addr, "huge-name", &dir.path().join("out"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "http://{addr}/huge-name.tar.gz: archive: GNU long name of 67108864 bytes: \
             expected at most 4096"
        )
    );
}

#[tokio::test]
async fn extension_headers_count_against_the_size_cap() {
    let name = [vec![b'n'; 3000], vec![0]].concat();
    let addr = serve_archives(vec![(
        "named",
        tar_gz(&[
            Entry::Meta(tar::EntryType::GNULongName, &name, None),
            Entry::File("f", b"tiny", 0o644),
        ]),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let url = format!("http://{addr}/named.tar.gz");
    let err = Download::new(&url, &dest)
        .insecure_skip_checksum()
        .unpack_tar_gz()
        .max_size(2000)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{url}: archive: unpacks to more than the 2000-byte limit")
    );
}

#[tokio::test]
async fn an_entry_name_in_a_message_is_cut() {
    let long = [vec![b'z'; 3000], b"/../x".to_vec(), vec![0]].concat();
    let addr = serve_archives(vec![(
        "dotdot-long",
        tar_gz(&[
            Entry::Meta(tar::EntryType::GNULongName, &long, None),
            Entry::File("f", b"x", 0o644),
        ]),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_into(addr, "dotdot-long", &dir.path().join("out"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 400, "{} bytes: {message}", message.len());
    assert!(
        message.ends_with("… (3005 bytes): \"..\" is not allowed"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_unpack_removes_what_it_wrote_and_keeps_what_was_there() {
    let addr = serve_archives(vec![(
        "blocked",
        tar_gz(&[
            Entry::Dir("new/deeper/"),
            Entry::File("new/a", b"a", 0o644),
            Entry::File("made/on/the/way", b"w", 0o644),
            Entry::Symlink("link", "new/a"),
            Entry::File("top", b"t", 0o644),
            // A directory with files stands there: the rename over it fails.
            Entry::File("blocked", b"x", 0o644),
        ]),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    fs::create_dir_all(dest.join("blocked")).unwrap();
    fs::write(dest.join("blocked/inner"), "keep").unwrap();
    fs::write(dest.join("keep"), "keep").unwrap();
    let err = unpack_into(addr, "blocked", &dest).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&dest.join("blocked").display().to_string()),
        "{err}"
    );
    assert_eq!(common::names(&dest), ["blocked", "keep"]);
    assert_eq!(common::names(&dest.join("blocked")), ["inner"]);
    assert_eq!(fs::read_to_string(dest.join("keep")).unwrap(), "keep");
}

/// A server on the test's (paused) clock: sends `chunks` pieces of 10 000 bytes, waiting
/// `pause(i)` before piece `i`, with a `Content-Length` or chunked.
async fn serve_slowly(
    chunks: usize,
    with_length: bool,
    pause: fn(usize) -> std::time::Duration,
) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0; 4096];
        let _ = socket.read(&mut request).await;
        let framing = if with_length {
            format!("Content-Length: {}", chunks * 10_000)
        } else {
            "Transfer-Encoding: chunked".to_owned()
        };
        let head = format!("HTTP/1.1 200 OK\r\n{framing}\r\nConnection: close\r\n\r\n");
        socket.write_all(head.as_bytes()).await.unwrap();
        for i in 0..chunks {
            tokio::time::sleep(pause(i)).await;
            let piece = vec![b'p'; 10_000];
            if with_length {
                socket.write_all(&piece).await.unwrap();
            } else {
                socket.write_all(b"2710\r\n").await.unwrap();
                socket.write_all(&piece).await.unwrap();
                socket.write_all(b"\r\n").await.unwrap();
            }
        }
        if !with_length {
            socket.write_all(b"0\r\n\r\n").await.unwrap();
        }
        socket.flush().await.unwrap();
    });
    addr
}

/// The progress lines in `logs`.
fn progress_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("initkit::progress"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn progress_is_logged_every_five_seconds_with_percent_rate_and_time_left() {
    let (logs, _guard) = support::logs::capture();
    // 20 pieces, at 0.5 s, 1.5 s, ... 19.5 s (off the 5 s marks).
    let addr = serve_slowly(20, true, |i| {
        std::time::Duration::from_millis(if i == 0 { 500 } else { 1000 })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    Download::new(
        format!("http://{addr}/artifact"),
        dir.path().join("artifact"),
    )
    .insecure_skip_checksum()
    .run(&Context::new())
    .await
    .unwrap();
    let elapsed = started.elapsed().as_secs();
    assert_eq!(elapsed, 19, "19.5 s");
    let logs = logs.text();
    let lines = progress_lines(&logs);
    // One line per 5 s of elapsed time, never one per piece.
    assert_eq!(lines.len() as u64, elapsed / 5, "{logs}");
    // The first, at 5 s: 50 000 bytes of 200 000, 25 %, 10 000 bytes a second, 150 000 /
    // 10 000 = 15 s left.
    let first = lines[0];
    for field in [
        "bytes=50000",
        "total_bytes=200000",
        "percent=25",
        "rate_bytes_per_s=10000",
        "eta_s=15",
        "downloading: 48.8 KiB of 195.3 KiB (25%), 9.8 KiB/s, about 15s left",
    ] {
        assert!(first.contains(field), "{field} missing in {first}");
    }
    assert!(lines[2].contains("bytes=150000"), "{}", lines[2]);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_download_still_logs_progress_without_a_percent_when_the_length_is_unknown() {
    let (logs, _guard) = support::logs::capture();
    // One piece, then nothing for 12 s, then the last piece.
    let addr = serve_slowly(2, false, |i| std::time::Duration::from_secs(12 * i as u64)).await;
    let dir = tempfile::tempdir().unwrap();
    Download::new(
        format!("http://{addr}/artifact"),
        dir.path().join("artifact"),
    )
    .insecure_skip_checksum()
    .run(&Context::new())
    .await
    .unwrap();
    let logs = logs.text();
    let lines = progress_lines(&logs);
    assert_eq!(lines.len(), 2, "{logs}");
    for line in &lines {
        assert!(line.contains("bytes=10000"), "{line}");
        assert!(line.contains("downloading: 9.8 KiB received, "), "{line}");
        assert!(
            !line.contains("percent") && !line.contains("eta_s") && !line.contains("total_bytes"),
            "{line}"
        );
    }
    assert!(lines[0].contains("rate_bytes_per_s=2000"), "{}", lines[0]);
    assert!(lines[1].contains("rate_bytes_per_s=1000"), "{}", lines[1]);
}

#[tokio::test]
async fn a_quick_download_logs_no_progress() {
    let (logs, _guard) = support::logs::capture();
    let addr = serve().await;
    let dir = tempfile::tempdir().unwrap();
    Download::new(format!("http://{addr}/tool"), dir.path().join("tool"))
        .sha256(sha256_hex(&payload()))
        .run(&Context::new())
        .await
        .unwrap();
    assert!(progress_lines(&logs.text()).is_empty(), "{}", logs.text());
}
