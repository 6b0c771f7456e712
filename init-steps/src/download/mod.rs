//! `Download`: an http(s) resource to a file, checked against a pinned SHA-256, size-capped and
//! written atomically; optionally a `.tar.gz` unpacked into a directory it cannot escape.

use std::fmt;
use std::path::PathBuf;

mod body;
mod progress;
mod unpack;

use init_core::{Context, Publication, Step, StepError, ValidateContext, async_trait};
use sha2::Digest as _;

use crate::support::atomic;
use crate::support::file_output::{DefaultMode, FileOutput, file_output_setters};
use crate::support::hex::hex;
use crate::support::http_client::{self, Family, Lazy, Redirects, TlsOptions};
use body::Sink;
use progress::Progress;

/// The default size cap: 1 GiB.
const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// How many bytes of the body are handed to the writer thread at once.
const BATCH: usize = 256 * 1024;

/// Downloads an http(s) URL to a file, or unpacks a downloaded `.tar.gz` into a directory.
///
/// - **Pinned**: [`sha256`](Self::sha256) is required, unless waived with
///   [`insecure_skip_checksum`](Self::insecure_skip_checksum); a mismatch is permanent and the
///   message shows both hashes. Validation refuses a download with neither.
/// - **Capped**: at most [`max_size`](Self::max_size) bytes (1 GiB by default) are read, and,
///   when unpacking, at most that many bytes are unpacked.
/// - **Atomic**: the body streams into a temp file next to the destination while it is
///   hashed; the file replaces the destination only once it is complete and verified.
/// - **Retried** (by the executor) on network errors, 408, 425, 429 and 5xx (after the
///   server's `Retry-After`, when it sends one); any other HTTP status
///   (400, 404 included: the server is up and answered) is permanent. Redirects are followed
///   (up to 10, to the same host only when the URL carries credentials); more than 10, or one
///   from https to http, is permanent. A certificate that does not verify is permanent, except
///   one not valid *yet*, which is retried once it is; a CA file that is missing when the step
///   runs is permanent, naming it (see the table in the `http_client` module, summed up in the
///   README).
///
/// With [`unpack_tar_gz`](Self::unpack_tar_gz) the destination is a directory: the archive is
/// verified, every entry checked (no absolute path, no `..`, link targets inside the
/// directory, only files, directories and links), and only then extracted, each file
/// atomically. Files keep the archive's permission bits (without set-user-ID, set-group-ID and
/// sticky); owners in the archive are ignored.
///
/// # Examples
///
/// ```
/// use init_core::Step;
/// use init_steps::download::Download;
///
/// let tool = Download::new("https://example.com/tool-1.2.3", "/shared/bin/tool")
///     .sha256("a3f5c2f1b6b0e5f2ce2a9e7a3d2b9c0e6f8a1d4c7b2e5f8a9c0d3e6f9a2b5c8d")
///     .mode(0o755);
/// assert_eq!(tool.name(), "download /shared/bin/tool");
/// assert!(tool.validate(&init_core::ValidateContext::process()).is_ok());
///
/// let unpinned = Download::new("https://example.com/x", "/tmp/x");
/// assert!(unpinned.validate(&init_core::ValidateContext::process()).unwrap_err().is_invalid());
/// ```
#[derive(Clone)]
pub struct Download {
    name: String,
    url: String,
    dest: PathBuf,
    sha256: Option<String>,
    skip_checksum: bool,
    max_size: u64,
    ca_file: Option<PathBuf>,
    unpack: bool,
    output: FileOutput,
    /// Built on the first attempt (it reads the CA file, which an earlier step may write) and
    /// kept for the retries.
    client: Lazy<reqwest::Client>,
}

impl fmt::Debug for Download {
    /// The URL without its password, query and fragment (they may hold credentials: a
    /// presigned URL's signature, a token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match url::Url::parse(&self.url) {
            Ok(url) => http_client::display_url(&url),
            Err(_) => init_core::Redactor::new().redact(&self.url).into_owned(),
        };
        f.debug_struct("Download")
            .field("name", &self.name)
            .field("url", &url)
            .field("dest", &self.dest)
            .field("sha256", &self.sha256)
            .field("skip_checksum", &self.skip_checksum)
            .field("max_size", &self.max_size)
            .field("ca_file", &self.ca_file)
            .field("unpack", &self.unpack)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// Downloads `url` to the file `dest`. The step is named `download <dest>`.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a.bin", "/data/a.bin");
    /// # use init_core::{Step, ValidateContext};
    /// // Without a `sha256` (or `insecure_skip_checksum`) validation refuses the step.
    /// let err = step.validate(&ValidateContext::process()).unwrap_err();
    /// assert!(err.to_string().contains("expected a sha256"), "{err}");
    /// ```
    #[must_use]
    pub fn new(url: impl Into<String>, dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        Self {
            name: format!("download {}", dest.display()),
            url: url.into(),
            dest,
            sha256: None,
            skip_checksum: false,
            max_size: DEFAULT_MAX_SIZE,
            ca_file: None,
            unpack: false,
            output: FileOutput::default(),
            client: Lazy::new(),
        }
    }

    /// The expected SHA-256 of the downloaded bytes (64 hex digits; of the archive when
    /// unpacking).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a", "/data/a")
    ///     .sha256("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn sha256(mut self, hex: impl Into<String>) -> Self {
        self.sha256 = Some(hex.into().to_ascii_lowercase());
        self
    }

    /// Waives the checksum: whatever the server sends is accepted. Only for resources that
    /// change and come from a server you trust over TLS.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/latest.json", "/data/l.json")
    ///     .insecure_skip_checksum();
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn insecure_skip_checksum(mut self) -> Self {
        self.skip_checksum = true;
        self
    }

    /// The most bytes downloaded (and unpacked); a larger resource is a permanent error.
    /// Default 1 GiB.
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/a", "/data/a")
    ///     .insecure_skip_checksum()
    ///     .max_size(10 << 20);
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// A PEM file of CA certificates trusted in addition to the system roots (read when the
    /// step runs, so an earlier step may write it).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://artifacts.internal/a", "/data/a")
    ///     .insecure_skip_checksum()
    ///     .ca_file("/etc/initkit/internal-ca.pem");
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Treats the download as a `.tar.gz` archive and unpacks it into the directory `dest`
    /// (created when missing; existing files the archive holds are replaced, others kept).
    ///
    /// ```
    /// let step = init_steps::download::Download::new("https://example.com/tool.tar.gz", "/opt/tool")
    ///     .sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    ///     .unpack_tar_gz();
    /// # use init_core::{Step, ValidateContext};
    /// assert!(step.validate(&ValidateContext::process()).is_ok());
    /// ```
    #[must_use]
    pub fn unpack_tar_gz(mut self) -> Self {
        self.unpack = true;
        self
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_file: self.ca_file.clone(),
            ..TlsOptions::default()
        }
    }

    fn parsed_url(&self) -> Result<url::Url, StepError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| StepError::invalid(format!("{}: invalid URL: {e}", self.name)))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(StepError::invalid(format!(
                "{}: URL {}: expected an http or https URL",
                self.name,
                http_client::display_url(&url)
            )));
        }
        Ok(url)
    }
}

file_output_setters!(
    Download,
    output,
    "download::Download::new(\"https://example.com/tool\", \"/bin/tool\").insecure_skip_checksum()",
    "the downloaded file",
    "the downloaded file, or of every unpacked entry",
    "the existing file's mode, or `0o644` less the umask. Not with [`unpack_tar_gz`](Self::unpack_tar_gz), whose files keep the archive's modes."
);

#[async_trait]
impl Step for Download {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.parsed_url()?;
        match (&self.sha256, self.skip_checksum) {
            (None, false) => {
                return Err(StepError::invalid(format!(
                    "{}: expected a sha256 to check the download against (or \
                     insecure_skip_checksum() to waive it)",
                    self.name
                )));
            }
            (Some(_), true) => {
                return Err(StepError::invalid(format!(
                    "{}: both a sha256 and insecure_skip_checksum() are set; expected one",
                    self.name
                )));
            }
            (Some(hex), false)
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                return Err(StepError::invalid(format!(
                    "{}: sha256 {hex:?}: expected 64 hex digits",
                    self.name
                )));
            }
            _ => {}
        }
        if self.max_size == 0 {
            return Err(StepError::invalid(format!(
                "{}: max_size 0: expected at least one byte",
                self.name
            )));
        }
        if self.unpack && self.output.mode().is_some() {
            return Err(StepError::invalid(format!(
                "{}: mode: unpacked files keep the archive's modes; expected no mode with \
                 unpack_tar_gz()",
                self.name
            )));
        }
        self.output.validate(&self.name)?;
        let tls = self.tls();
        tls.validate(&self.name)?;
        tls.check_files(&self.name)
    }

    async fn run(&self, _ctx: &Context) -> Result<(), StepError> {
        let url = self.parsed_url()?;
        let shown = http_client::display_url(&url);
        let redirects = if url.username().is_empty() && url.password().is_none() {
            Redirects::AnyHost
        } else {
            Redirects::SameOrigin
        };
        let client = self.client.get_or_build(|| {
            http_client::build_client(&self.tls(), redirects, Family::OneShot, &self.name)
        })?;
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| http_client::classify_error(e, Family::OneShot, &shown))?;
        let status = response.status();
        if !status.is_success() {
            let class = http_client::status_class(status, Family::OneShot);
            return Err(http_client::status_error(
                &shown,
                status,
                class,
                None,
                response.headers(),
            ));
        }
        let too_large = || {
            StepError::permanent(format!(
                "{shown}: larger than the {}-byte limit",
                self.max_size
            ))
        };
        if response.content_length().is_some_and(|n| n > self.max_size) {
            return Err(too_large());
        }

        // The body goes to the atomic writer's temp file (a file) or to an unnamed temp file
        // in the destination directory (an archive), hashed on the way; the file work (the
        // writes, the fsync, the unpacking) runs on blocking threads, so a SIGTERM or a
        // timeout never waits for the disk.
        let mut sink = Sink::open(&self.name, self.unpack, self.dest.clone());
        let mut progress = Progress::new(response.content_length());
        let mut batch = Vec::new();
        let mut batched = 0;
        let mut total: u64 = 0;
        loop {
            let chunk =
                match tokio::time::timeout_at(progress.next_report(), response.chunk()).await {
                    Err(_) => {
                        progress.report(&shown);
                        continue;
                    }
                    Ok(chunk) => chunk
                        .map_err(|e| http_client::classify_error(e, Family::OneShot, &shown))?,
                };
            let Some(chunk) = chunk else { break };
            total += chunk.len() as u64;
            if total > self.max_size {
                return Err(too_large());
            }
            progress.advance(chunk.len() as u64, &shown);
            batched += chunk.len();
            batch.push(chunk);
            if batched >= BATCH {
                sink = sink.write(std::mem::take(&mut batch)).await?;
                batched = 0;
            }
        }
        let writer = sink.write(batch).await?.done().await?;
        let actual = hex(&writer.hasher.clone().finalize());
        if let Some(expected) = &self.sha256
            && *expected != actual
        {
            return Err(StepError::permanent(format!(
                "{shown}: sha256 mismatch: expected {expected}, got {actual}"
            )));
        }
        let options = self.output.options(DefaultMode::Existing);
        let (max, shown_in) = (self.max_size, shown.clone());
        atomic::off_thread(&self.name, move || writer.place(options, max, &shown_in)).await?;
        tracing::debug!(url = %shown, path = %self.dest.display(), bytes = total, "downloaded");
        Ok(())
    }
}
