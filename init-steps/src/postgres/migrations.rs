//! Which SQL migrations a [`PostgresMigrate`](super::PostgresMigrate) applies: a directory read
//! when the step runs, or a set embedded in the binary; names `V<n>__<name>.sql`, one file per
//! version, checked at validation and again when read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use refinery_core::Migration;

/// The migrations as configured.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Every `*.sql` file directly in this directory (entries whose names start with `.` are
    /// skipped: a Kubernetes ConfigMap volume keeps its real files in `..data/`, shown at the
    /// top through symlinks).
    Dir(PathBuf),
    /// File names and SQL given in code.
    Embedded(Vec<(String, String)>),
}

/// A migration's version and name, from a file name `V<n>__<name>.sql` (`n` a number up to
/// 2147483647, `name` letters, digits and `_`).
pub(crate) fn parse_name(file: &str) -> Result<i32, String> {
    const EXPECTED: &str = "expected V<number>__<name>.sql, the name made of letters, digits and _";
    let stem = file
        .strip_suffix(".sql")
        .and_then(|s| s.strip_prefix('V'))
        .ok_or_else(|| format!("migration file {file:?}: {EXPECTED}"))?;
    let (version, name) = stem
        .split_once("__")
        .ok_or_else(|| format!("migration file {file:?}: {EXPECTED}"))?;
    let valid_name =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || !valid_name {
        return Err(format!("migration file {file:?}: {EXPECTED}"));
    }
    version.parse().map_err(|_| {
        format!("migration file {file:?}: version {version} is above the largest, 2147483647")
    })
}

/// The file names of `dir` that are migrations (`*.sql`, not starting with `.`), sorted.
fn sql_files(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("migrations directory {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("migrations directory {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".sql") {
            continue;
        }
        // Follows symlinks (a ConfigMap's files are symlinks into `..data/`).
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Checks the names: each well formed, no version twice, at least one.
fn check_names<'a>(names: impl IntoIterator<Item = &'a str>, place: &str) -> Result<(), String> {
    let mut seen: BTreeMap<i32, &str> = BTreeMap::new();
    for name in names {
        let version = parse_name(name)?;
        if let Some(first) = seen.insert(version, name) {
            return Err(format!(
                "migrations {first:?} and {name:?} have the same version {version}: expected one file per version"
            ));
        }
    }
    if seen.is_empty() {
        return Err(format!(
            "no migrations in {place}: expected files named V<number>__<name>.sql"
        ));
    }
    Ok(())
}

impl Source {
    /// Checks the names without reading any SQL (validation).
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Self::Dir(dir) => {
                let names = sql_files(dir)?;
                check_names(
                    names.iter().map(String::as_str),
                    &format!("directory {}", dir.display()),
                )
            }
            Self::Embedded(set) => check_names(set.iter().map(|(n, _)| n.as_str()), "the set"),
        }
    }

    /// Reads the migrations (the directory's files now), checked again, sorted by version.
    pub(crate) fn load(&self) -> Result<Vec<Migration>, String> {
        self.check()?;
        let files: Vec<(String, String)> = match self {
            Self::Embedded(set) => set.clone(),
            Self::Dir(dir) => sql_files(dir)?
                .into_iter()
                .map(|name| {
                    let path = dir.join(&name);
                    std::fs::read_to_string(&path)
                        .map(|sql| (name, sql))
                        .map_err(|e| format!("migration file {}: {e}", path.display()))
                })
                .collect::<Result<_, _>>()?,
        };
        let mut migrations = files
            .iter()
            .map(|(name, sql)| {
                let stem = name.strip_suffix(".sql").unwrap_or(name);
                Migration::unapplied(stem, sql).map_err(|e| format!("migration {name:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        migrations.sort();
        Ok(migrations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_v_number_double_underscore_name_dot_sql() {
        assert_eq!(parse_name("V1__create_orders.sql"), Ok(1));
        assert_eq!(parse_name("V007__x.sql"), Ok(7));
        for bad in [
            "v1__a.sql",
            "V1_a.sql",
            "V__a.sql",
            "V1__.sql",
            "V1__add-email.sql",
            "V1.5__a.sql",
            "U1__a.sql",
            "V1__a.SQL",
        ] {
            let err = parse_name(bad).unwrap_err();
            assert!(
                err.contains("expected V<number>__<name>.sql"),
                "{bad}: {err}"
            );
        }
        assert!(
            parse_name("V2147483648__a.sql")
                .unwrap_err()
                .contains("above the largest")
        );
    }

    #[test]
    fn two_files_of_one_version_are_refused_naming_both() {
        let set = Source::Embedded(vec![
            ("V1__a.sql".into(), "SELECT 1".into()),
            ("V01__b.sql".into(), "SELECT 1".into()),
        ]);
        let err = set.check().unwrap_err();
        assert!(
            err.contains("\"V1__a.sql\" and \"V01__b.sql\" have the same version 1"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_set_is_refused() {
        let err = Source::Embedded(Vec::new()).check().unwrap_err();
        assert!(err.starts_with("no migrations in the set"), "{err}");
    }

    #[test]
    fn a_configmap_volume_is_read_once_in_version_order() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        // What the kubelet's AtomicWriter makes: real files in a timestamped directory, `..data`
        // pointing at it, one symlink per key at the top.
        let real = dir.path().join("..2026_12_05_12_00_00.1");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("V10__c.sql"), "SELECT 10").unwrap();
        std::fs::write(real.join("V2__b.sql"), "SELECT 2").unwrap();
        symlink("..2026_12_05_12_00_00.1", dir.path().join("..data")).unwrap();
        for key in ["V10__c.sql", "V2__b.sql"] {
            symlink(format!("..data/{key}"), dir.path().join(key)).unwrap();
        }
        std::fs::write(dir.path().join("README.md"), "not a migration").unwrap();

        let loaded = Source::Dir(dir.path().into()).load().unwrap();

        let versions: Vec<_> = loaded.iter().map(Migration::version).collect();
        assert_eq!(versions, [2, 10]);
        assert_eq!(loaded[0].sql(), Some("SELECT 2"));
    }

    #[test]
    fn a_badly_named_sql_file_in_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("V1__ok.sql"), "SELECT 1").unwrap();
        std::fs::write(dir.path().join("2_add_email.sql"), "SELECT 1").unwrap();

        let err = Source::Dir(dir.path().into()).check().unwrap_err();

        assert!(err.contains("migration file \"2_add_email.sql\""), "{err}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = Source::Dir("/nonexistent/migrations".into())
            .check()
            .unwrap_err();
        assert!(
            err.starts_with("migrations directory /nonexistent/migrations: "),
            "{err}"
        );
    }
}
