//! [`CopyFile`]: a file copied atomically.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};

use crate::support::atomic::{self, AtomicFile};
use crate::support::file_output::{DefaultMode, FileOutput, file_output_setters};

use super::io_error;

/// Copies a file atomically (temp file next to the destination, fsync, rename).
///
/// The source may be a symlink (it is read through); the destination is replaced, never
/// written through. The copy gets the source's permission bits (without set-user-ID,
/// set-group-ID and sticky) unless [`mode`](Self::mode) is set. A rerun copies again and
/// gives the same result.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::fs::CopyFile;
///
/// let step = CopyFile::new("/image/bin/tool", "/shared/bin/tool").mode(0o755);
/// assert_eq!(step.name(), "copy /shared/bin/tool");
/// ```
#[derive(Debug, Clone)]
pub struct CopyFile {
    name: String,
    src: PathBuf,
    dest: PathBuf,
    output: FileOutput,
}

impl CopyFile {
    /// Copies `src` to `dest`. The step is named `copy <dest>`.
    ///
    /// ```
    /// let step = init_steps::fs::CopyFile::new("/image/app.conf", "/config/app.conf");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn new(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        Self {
            name: format!("copy {}", dest.display()),
            src: src.into(),
            dest,
            output: FileOutput::default(),
        }
    }
}

file_output_setters!(
    CopyFile,
    output,
    "fs::CopyFile::new(\"/image/app.conf\", \"/config/app.conf\")",
    "the copy",
    "the copy",
    "the source's permission bits (without set-user-ID, set-group-ID and sticky)."
);

#[async_trait]
impl Step for CopyFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.output.validate(&self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let src = self.src.clone();
        let (mut file, mode) = atomic::off_thread(&self.name, move || open_source(&src)).await?;
        let src = self.src.clone();
        let fill = move |out: &mut AtomicFile| copy_into(&mut file, &src, out);
        let (default, swept) = (DefaultMode::Fixed(mode), Arc::default());
        (self.output)
            .stage_with(&self.name, &self.dest, default, &swept, fill)
            .await?
            .commit(&self.name)
            .await
    }
}

/// Opens the source and reads its permission bits; anything but a regular file is refused.
fn open_source(src: &Path) -> Result<(File, u32), StepError> {
    let file = File::open(src).map_err(io_error(src))?;
    let meta = file.metadata().map_err(io_error(src))?;
    if !meta.is_file() {
        return Err(StepError::permanent(format!(
            "{}: is not a regular file",
            src.display()
        )));
    }
    Ok((file, meta.mode() & 0o777))
}

/// Copies `file` (the source, `src`) into the temp file `out`; errors name the side that failed.
fn copy_into(file: &mut File, src: &Path, out: &mut AtomicFile) -> Result<(), StepError> {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(src)(e)),
        };
        out.file_mut()
            .write_all(&buf[..n])
            .map_err(|e| out.error(e))?;
    }
}
