//! `fetch`: downloads one http(s) URL to a file, pinned to a SHA-256 (or, with `-`, unpinned),
//! as an init container would; logs its progress every 5 s.
//!
//! ```text
//! fetch URL DEST SHA256|-
//! ```
//!
//! Exit codes as in [`Plan::run_main`]: 0, 1 when the download fails, 2 for bad usage, 143 on
//! SIGTERM. `scripts/measure-sigterm-download.py` times SIGTERM → exit with it.

use std::process::ExitCode;

use initkit::Download;
use initkit::prelude::*;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, dest, sha] = args.as_slice() else {
        eprintln!("usage: fetch URL DEST SHA256|-");
        return ExitCode::from(2);
    };
    let step = Download::new(url, dest);
    let step = if sha == "-" {
        step.insecure_skip_checksum()
    } else {
        step.sha256(sha)
    };
    Plan::new("fetch").step(step).run_main()
}
