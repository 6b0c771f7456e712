//! File-system steps: [`EnsureDir`], [`Chmod`], [`Chown`], [`CopyFile`] and [`WriteFile`]. All
//! are idempotent, never follow a symlink they walk into, and write files atomically.
//! [`FileWait`] waits for a file to appear.

mod chmod;
mod chown;
mod copy_file;
mod ensure_dir;
mod file_wait;
mod tree;
mod write_file;

pub use chmod::Chmod;
pub use chown::Chown;
pub use copy_file::CopyFile;
pub use ensure_dir::EnsureDir;
pub use file_wait::FileWait;
pub use write_file::WriteFile;

use std::io;
use std::path::Path;

use init_core::StepError;

fn io_error(path: &Path) -> impl Fn(io::Error) -> StepError + '_ {
    move |e| StepError::from_error(e).context(path.display())
}
