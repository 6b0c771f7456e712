//! File-system steps on real directories, modes, owners and symlinks.
#![cfg(feature = "fs")]

#[path = "support/files_common.rs"]
mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use init_core::{Context, Step, ValidateContext};
use init_steps::fs::{Chmod, Chown, CopyFile, EnsureDir, WriteFile};
use serde_json::json;

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
}

#[tokio::test]
async fn ensure_dir_creates_parents_and_sets_the_exact_mode_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/cache");
    let step = EnsureDir::new(&path).mode(0o2750);
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    assert!(path.is_dir());
    assert_eq!(common::mode(&path), 0o2750);
    assert_eq!(
        common::mode(&dir.path().join("a")),
        0o777 & !common::umask()
    );

    // An existing directory with another mode is corrected, and a rerun changes nothing.
    set_mode(&path, 0o777);
    fs::write(path.join("kept"), "x").unwrap();
    step.run(&Context::new()).await.unwrap();
    step.run(&Context::new()).await.unwrap();
    assert_eq!(common::mode(&path), 0o2750);
    assert_eq!(common::names(&path), ["kept"]);
}

#[tokio::test]
async fn ensure_dir_refuses_a_file_or_a_symlink_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = EnsureDir::new(&file)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{}: exists and is not a directory", file.display())
    );

    let link = dir.path().join("link");
    symlink(dir.path(), &link).unwrap();
    let err = EnsureDir::new(&link)
        .mode(0o700)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: is a symlink; refusing to follow it", link.display())
    );
    assert_ne!(common::mode(dir.path()), 0o700);
}

#[tokio::test]
async fn chmod_recursive_sets_files_and_dirs_and_skips_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join("sub/deeper/b.txt"), "b").unwrap();
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, "o").unwrap();
    set_mode(&outside, 0o604);
    symlink(&outside, root.join("sub/link-out")).unwrap();
    symlink(dir.path(), root.join("dir-link-out")).unwrap();

    let parent_mode = common::mode(dir.path());
    let step = Chmod::new(&root, 0o640).dir_mode(0o750).recursive();
    step.validate(&ValidateContext::process()).unwrap();
    step.run(&Context::new()).await.unwrap();
    for d in ["", "sub", "sub/deeper"] {
        assert_eq!(common::mode(&root.join(d)), 0o750, "{d}");
    }
    for f in ["a.txt", "sub/deeper/b.txt"] {
        assert_eq!(common::mode(&root.join(f)), 0o640, "{f}");
    }
    assert_eq!(common::mode(&outside), 0o604);
    assert_eq!(common::mode(dir.path()), parent_mode);
}

#[tokio::test]
async fn chmod_of_one_path_leaves_the_tree_alone_and_refuses_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a"), "a").unwrap();
    set_mode(&root.join("a"), 0o600);
    Chmod::new(&root, 0o711).run(&Context::new()).await.unwrap();
    assert_eq!(common::mode(&root), 0o711);
    assert_eq!(common::mode(&root.join("a")), 0o600);

    let link = dir.path().join("link");
    symlink(root.join("a"), &link).unwrap();
    let err = Chmod::new(&link, 0o777)
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("{}: is a symlink; refusing to follow it", link.display())
    );
    assert_eq!(common::mode(&root.join("a")), 0o600);
}

#[tokio::test]
async fn chown_recursive_changes_links_not_their_targets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/a"), "a").unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, "o").unwrap();
    symlink(&outside, root.join("sub/link-out")).unwrap();
    let step = Chown::new(&root).uid(4321).gid(4322).recursive();
    step.validate(&ValidateContext::process()).unwrap();
    let result = step.run(&Context::new()).await;
    if is_root() {
        result.unwrap();
        for p in ["", "sub", "sub/a", "sub/link-out"] {
            let meta = fs::symlink_metadata(root.join(p)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4321, 4322), "{p}");
        }
        let meta = fs::metadata(&outside).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
    } else {
        let err = result.unwrap_err();
        assert!(err.is_permanent());
        assert_eq!(
            err.to_string(),
            format!("{}: operation not permitted", root.display())
        );
    }
}

#[tokio::test]
async fn chown_needs_a_uid_or_a_gid() {
    let err = Chown::new("/data")
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        "chown /data: expected a uid, a gid or both"
    );
}

#[tokio::test]
async fn invalid_modes_are_found_by_validate() {
    let err = Chmod::new("/data", 0o644)
        .dir_mode(0o17777)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "chmod /data (directories): mode 0o17777: expected permission bits between 0o000 and 0o7777"
    );
    let err = EnsureDir::new("/data")
        .mode(0o10000)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    let err = WriteFile::text("/x", "x")
        .mode(0o70000)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    let err = CopyFile::new("/a", "/b")
        .mode(0o100644)
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "copy /b: mode 0o100644: expected permission bits between 0o000 and 0o7777"
    );
}

#[tokio::test]
async fn copy_file_keeps_bytes_and_mode_and_replaces_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tool");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    fs::write(&src, &bytes).unwrap();
    set_mode(&src, 0o4755);
    let outside = dir.path().join("outside");
    fs::write(&outside, "keep").unwrap();
    let dest = dir.path().join("bin/tool");
    fs::create_dir(dir.path().join("bin")).unwrap();
    symlink(&outside, &dest).unwrap();

    let step = CopyFile::new(&src, &dest);
    step.run(&Context::new()).await.unwrap();
    step.run(&Context::new()).await.unwrap();
    assert_eq!(fs::read(&dest).unwrap(), bytes);
    assert_eq!(common::mode(&dest), 0o755);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
    assert_eq!(common::names(&dir.path().join("bin")), ["tool"]);

    CopyFile::new(&src, &dest)
        .mode(0o700)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(common::mode(&dest), 0o700);
}

#[tokio::test]
async fn copy_file_names_a_missing_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("missing");
    let err = CopyFile::new(&src, dir.path().join("out"))
        .run(&Context::new())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "a later step may still create it");
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", src.display())
    );
    assert!(!dir.path().join("out").exists());
}

#[tokio::test]
async fn write_file_writes_unicode_and_binary_exactly_honouring_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("t.txt");
    WriteFile::text(&text, "ünïcødé ✓ 漢字 🚀\r\n\0end")
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(
        fs::read(&text).unwrap(),
        "ünïcødé ✓ 漢字 🚀\r\n\0end".as_bytes()
    );
    assert_eq!(common::mode(&text), 0o644 & !common::umask());

    let bin = dir.path().join("b.bin");
    let bytes = [0xFF, 0xFE, 0x00, 0x80, 0xC3];
    WriteFile::bytes(&bin, bytes)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(fs::read(&bin).unwrap(), bytes);

    // An existing file keeps its mode on rewrite.
    set_mode(&bin, 0o604);
    WriteFile::bytes(&bin, [1, 2])
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(common::mode(&bin), 0o604);
}

#[tokio::test]
async fn write_file_from_a_secret_value_is_0600() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new();
    ctx.publish_secret("db", json!({ "password": "p4ss", "port": 5432 }));
    ctx.publish("settings", json!({ "a": [1, "two"] }));

    let password = dir.path().join("password");
    WriteFile::value(&password, "db.password")
        .run(&ctx)
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&password).unwrap(), "p4ss");
    assert_eq!(common::mode(&password), 0o600);

    let settings = dir.path().join("settings.json");
    WriteFile::value(&settings, "settings")
        .run(&ctx)
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&settings).unwrap(), r#"{"a":[1,"two"]}"#);
    assert_eq!(common::mode(&settings), 0o644 & !common::umask());
}

#[tokio::test]
async fn write_file_names_a_missing_value_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x");
    let ctx = Context::new();
    ctx.publish("db", json!({ "user": "u" }));
    let err = WriteFile::value(&dest, "vault")
        .run(&ctx)
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        format!("write {}: values.vault is not published", dest.display())
    );
    let err = WriteFile::value(&dest, "db.password")
        .run(&ctx)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "write {}: values.db.password is not published",
            dest.display()
        )
    );
    let err = WriteFile::value(&dest, "db..password")
        .validate(&ValidateContext::process())
        .unwrap_err();
    assert!(err.is_invalid());
    assert_eq!(
        err.to_string(),
        format!(
            "write {}: value path \"db..password\": expected names separated by dots",
            dest.display()
        )
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn owners_are_set_before_modes_so_set_id_bits_survive() {
    let dir = tempfile::tempdir().unwrap();
    // Root gives the files away; anyone else can at least "give" them to themselves.
    let own = fs::metadata(dir.path()).unwrap();
    let (uid, gid) = if is_root() {
        (4321, 4322)
    } else {
        (own.uid(), own.gid())
    };
    let owned = |path: &Path| {
        let meta = fs::symlink_metadata(path).unwrap();
        (meta.uid(), meta.gid())
    };

    // A chown clears set-user-ID and set-group-ID, so the mode must be set after it.
    let written = dir.path().join("written");
    WriteFile::text(&written, "#!/bin/sh\n")
        .mode(0o6755)
        .owner(uid, gid)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(owned(&written), (uid, gid));
    assert_eq!(common::mode(&written), 0o6755);

    let copied = dir.path().join("copied");
    CopyFile::new(&written, &copied)
        .mode(0o4750)
        .owner(uid, gid)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(owned(&copied), (uid, gid));
    assert_eq!(common::mode(&copied), 0o4750);

    let made = dir.path().join("made");
    EnsureDir::new(&made)
        .mode(0o2770)
        .owner(uid, gid)
        .run(&Context::new())
        .await
        .unwrap();
    assert_eq!(owned(&made), (uid, gid));
    assert_eq!(common::mode(&made), 0o2770);
}

#[test]
fn write_file_debug_shows_the_size_never_the_bytes() {
    let step = init_steps::fs::WriteFile::text("/secrets/key", "hunter2-secret-bytes");
    let debug = format!("{step:?}");
    assert!(debug.contains("Bytes(20 bytes)"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}
