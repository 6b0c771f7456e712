//! The template tree: which templates a render reads and where each output goes.

use std::path::{Path, PathBuf};

use init_core::StepError;

/// One template to render: its source file and its destination.
pub(super) struct Job {
    pub(super) src: PathBuf,
    pub(super) dest: PathBuf,
}

/// The files under `dir` (relative paths), following symlinks, skipping `..`-names.
pub(super) fn walk(
    base: &Path,
    relative: PathBuf,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), StepError> {
    let dir = base.join(&relative);
    if depth > 32 {
        return Err(StepError::permanent(format!(
            "{}: template tree is deeper than 32 levels (a symlink loop?)",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        StepError::from_error(e).context(format!(
            "{}: cannot read the template directory",
            dir.display()
        ))
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| StepError::from_error(e).context(dir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("..") {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path)
            .map_err(|e| StepError::from_error(e).context(path.display()))?;
        if meta.is_dir() {
            walk(base, relative.join(&name), out, depth + 1)?;
        } else if meta.is_file() {
            out.push(relative.join(&name));
        }
    }
    Ok(())
}

/// `relative` with a `.j2` or `.tmpl` suffix dropped from its file name.
pub(super) fn strip_template_suffix(relative: &Path) -> PathBuf {
    let Some(name) = relative.file_name().and_then(|n| n.to_str()) else {
        return relative.to_path_buf();
    };
    match name
        .strip_suffix(".j2")
        .or_else(|| name.strip_suffix(".tmpl"))
    {
        Some(stem) if !stem.is_empty() => relative.with_file_name(stem),
        _ => relative.to_path_buf(),
    }
}

/// The template's text; errors name the file (UTF-8 is required).
pub(super) fn read_template(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        StepError::from_error(e)
            .context(format!("{}: cannot read the template", path.display()))
            .to_string()
    })?;
    String::from_utf8(bytes)
        .map_err(|_| format!("{}: the template is not valid UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_template_suffixes_only() {
        assert_eq!(
            strip_template_suffix(Path::new("a/b.conf.j2")),
            Path::new("a/b.conf")
        );
        assert_eq!(strip_template_suffix(Path::new("b.tmpl")), Path::new("b"));
        assert_eq!(
            strip_template_suffix(Path::new("b.conf")),
            Path::new("b.conf")
        );
        assert_eq!(strip_template_suffix(Path::new(".j2")), Path::new(".j2"));
    }
}
