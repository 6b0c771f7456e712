//! [`Render`]: the step, its builder and what one render of one template does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use init_core::{Context, Publication, Reference, Step, StepError, ValidateContext, async_trait};

use super::check::run_check;
use super::environment::CHECKER;
use super::envsubst::{check_envsubst, render_envsubst};
use super::jinja::{check_jinja, render_jinja};
use super::tree::{Job, read_template, strip_template_suffix, walk};
use super::values::lock;
use crate::support::atomic::{self, SweptDirs};
use crate::support::file_output::{DefaultMode, FileOutput, file_output_setters};

/// Renders a template file, or every file of a template directory, into configuration files.
///
/// # Templates
///
/// [minijinja](https://docs.rs/minijinja) (Jinja2 syntax) with **strict undefined**: printing,
/// iterating or testing a missing value is an error that names the template file, the line and
/// the missing name (`/templates/app.toml.j2:3: undefined value values.db.password`). A
/// template sees:
///
/// - `values`: every value published by earlier steps, secrets included
///   (`{{ values.db.password }}`);
/// - `env`: the environment (`{{ env.HOSTNAME }}`).
///
/// Filters, besides minijinja's built-in ones (`default`, `indent`, `upper`, `join`, ...);
/// strict means strict: every filter but `default`/`d` fails on an undefined value with the same
/// error (`tojson` prints no `null` for it, `join` no empty string), even inside a list or map
/// given to `tojson`:
///
/// | filter | result |
/// |---|---|
/// | `required("message")` | the value, or an error with `message` when it is missing, none or empty |
/// | `b64encode` / `b64decode` | standard base64 (with padding); the decoded bytes must be UTF-8 |
/// | `tojson` / `tojson(2)` | JSON, compact or indented by that many spaces |
/// | `sha256` | the lowercase hex SHA-256 of the string |
///
/// Output is not escaped (configuration files are not HTML); a trailing newline is kept.
/// `{% include "name" %}` and `{% import %}` load files relative to the template's directory
/// (or the tree's root for [`Render::dir`]), never outside it.
///
/// [`envsubst`](Self::envsubst) switches to envsubst-style templates instead.
///
/// # Files
///
/// Each output is written atomically (temp file in the same directory, fsync, mode and owner
/// set, rename). Its mode is [`mode`](Self::mode) when given; otherwise `0o600` when the
/// template read a secret value (one published with `publish_secret`) or a secret environment
/// variable (see [`SecretEnv`](init_core::SecretEnv): `VAULT_TOKEN`, `*PASSWORD`, ... and the
/// plan's [`secret_env`](init_core::Plan::secret_env)), else the existing file's mode, or
/// `0o644` less the umask for a new file. With [`check`](Self::check), a command
/// checks the rendered temp file before the rename; when it fails the old file stays.
///
/// # Validation
///
/// [`Step::validate`] reads and parses the templates (they are part of the image, so they
/// must exist when the plan starts, a tree included): a syntax error, an unknown filter or
/// test, a variable other than `values`, `env` and the template's own (`valeus.db`), a missing
/// template file (or one it includes, imports or extends by a constant name), an invalid mode
/// or an empty check command is found before anything runs.
///
/// [`Step::reads`] declares every `values.*` and `env.*` the templates read (and the templates
/// they load by a constant name), each at its `file:line`, so that
/// [`Plan::validate`](init_core::Plan::validate) refuses a typo before any step runs:
/// `app.toml.j2:3: values.db.pasword: values.db has no key "pasword" (it has: password,
/// username) (did you mean values.db.password?)`. A read is *guarded*, and not checked, when
/// `default(..)`/`d`, `required` or an `is defined`/`is undefined` test is applied to it, or
/// when it sits where such a test holds (`{% if values.tls is defined %}{{ values.tls.cert
/// }}{% endif %}`, `values.a is defined and values.a.b`); a guard covers the last key only,
/// so `values.db.password | default("")` still needs `values.db`. An envsubst template declares
/// its `${VAR}`s, guarded when they have a default. What cannot be known before the run is
/// not declared: reads in a template loaded by a computed name, reads in a tree that does not
/// exist yet (validation then fails: the tree must be there), and keys read through a
/// computed subscript (`values.db[key]` declares `values.db`). [`Step::publishes`] is empty.
///
/// # Errors
///
/// A template error (undefined value, failed `required`, bad filter input) and a failed check
/// are permanent; reading and writing files fail as their I/O error says (a missing permission
/// is permanent). Rendered output is never logged, and errors never contain it.
///
/// # Examples
///
/// ```
/// use init_steps::template::Render;
///
/// let app = Render::file("/templates/app.toml.j2", "/config/app.toml").mode(0o640);
/// let nginx = Render::dir("/templates/nginx", "/etc/nginx")
///     .check(["nginx", "-t", "-c", "{}"]);
/// let legacy = Render::file("/templates/legacy.conf", "/config/legacy.conf").envsubst();
/// # use init_core::Step;
/// assert_eq!(app.name(), "render /config/app.toml");
/// # let _ = (nginx, legacy);
/// ```
#[derive(Debug, Clone)]
pub struct Render {
    name: String,
    src: PathBuf,
    dest: PathBuf,
    tree: bool,
    syntax: Syntax,
    output: FileOutput,
    check: Option<Vec<String>>,
    /// What the templates read, found by the last [`Step::validate`], for [`Step::reads`].
    scanned: Arc<Mutex<Option<Vec<Reference>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Jinja,
    Envsubst,
}

impl Render {
    /// Renders the template file `src` into `dest`. The step is named `render <dest>`.
    ///
    /// ```
    /// # use init_core::Step;
    /// let step = init_steps::template::Render::file("app.toml.j2", "/config/app.toml");
    /// assert_eq!(step.name(), "render /config/app.toml");
    /// ```
    #[must_use]
    pub fn file(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Self {
        Self::new(src.into(), dest.into(), false)
    }

    /// Renders every file under `src_dir` into the same relative path under `dest_dir`, with
    /// a `.j2` or `.tmpl` suffix dropped (`nginx/conf.d/site.conf.j2` becomes
    /// `<dest_dir>/conf.d/site.conf`). Symlinks in the source tree are followed (Kubernetes
    /// mounts ConfigMaps as links); entries whose name starts with `..` (a ConfigMap volume's
    /// internals) are skipped. Nothing is written through a symlink in the destination tree.
    ///
    /// ```
    /// # use init_core::Step;
    /// let step = init_steps::template::Render::dir("/templates", "/config");
    /// assert_eq!(step.name(), "render /config");
    /// ```
    #[must_use]
    pub fn dir(src_dir: impl Into<PathBuf>, dest_dir: impl Into<PathBuf>) -> Self {
        Self::new(src_dir.into(), dest_dir.into(), true)
    }

    fn new(src: PathBuf, dest: PathBuf, tree: bool) -> Self {
        Self {
            name: format!("render {}", dest.display()),
            src,
            dest,
            tree,
            syntax: Syntax::Jinja,
            output: FileOutput::default(),
            check: None,
            scanned: Arc::default(),
        }
    }

    /// Reads the templates as envsubst templates instead of minijinja: `${VAR}` is the
    /// environment variable `VAR` (an error naming it, the file and the line when it is
    /// unset), `${VAR:-default}` its value or `default` when it is unset or empty,
    /// `${VAR-default}` when it is unset, and `$$` a literal `$`. A `$` followed by anything
    /// else (`$host` in an nginx file) is kept as it is.
    ///
    /// ```
    /// let step = init_steps::template::Render::file("app.env.tmpl", "/config/app.env").envsubst();
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn envsubst(mut self) -> Self {
        self.syntax = Syntax::Envsubst;
        self.scanned = Arc::default();
        self
    }

    /// Runs `argv` on each rendered temp file before it replaces the destination; `{}` in an
    /// argument is replaced by the temp file's path. A failure (non-zero exit, or a program
    /// that cannot start) is permanent, keeps the old file, and the error shows the end of the
    /// command's output (redacted).
    ///
    /// The command gets the context's environment (the one templates see as `env`) and an
    /// empty stdin, and runs in its own process group, like a
    /// [`Command`](crate::command::Command) step: when the attempt is dropped (its timeout, the
    /// step's or the plan's deadline, SIGTERM) the whole group gets `SIGTERM`, then `SIGKILL`
    /// after 5 s, and is reaped, so no process of the check outlives it. Only the last ten
    /// lines of each output stream are kept, masked.
    ///
    /// ```
    /// let step = init_steps::template::Render::file("nginx.conf.j2", "/etc/nginx/nginx.conf")
    ///     .check(["nginx", "-t", "-q", "-c", "{}"]);
    /// # let _ = step;
    /// ```
    #[must_use]
    pub fn check<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.check = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// The templates and their destinations: `src` itself, or the files of the tree.
    fn jobs(&self) -> Result<Vec<Job>, StepError> {
        if !self.tree {
            return Ok(vec![Job {
                src: self.src.clone(),
                dest: self.dest.clone(),
            }]);
        }
        let mut files = Vec::new();
        walk(&self.src, PathBuf::new(), &mut files, 0)?;
        files.sort();
        files
            .into_iter()
            .map(|relative| {
                let out = strip_template_suffix(&relative);
                let dest = atomic::confined_join(&self.dest, &out)
                    .map_err(|e| StepError::permanent(format!("{}: {e}", self.name)))?;
                Ok(Job {
                    src: self.src.join(&relative),
                    dest,
                })
            })
            .collect()
    }

    /// The directory `{% include %}` resolves names in.
    fn root(&self) -> PathBuf {
        if self.tree {
            self.src.clone()
        } else {
            crate::support::text::parent_or_dot(&self.src).to_path_buf()
        }
    }

    /// Reads and parses every template: what they read, or the first error (invalid).
    fn scan(&self) -> Result<Vec<Reference>, StepError> {
        let jobs = self.jobs().map_err(into_invalid)?;
        let root = self.root();
        let mut references = Vec::new();
        for job in &jobs {
            let source = read_template(&job.src).map_err(StepError::invalid)?;
            references.extend(match self.syntax {
                Syntax::Jinja => check_jinja(&CHECKER, &root, &job.src, &source)?,
                Syntax::Envsubst => check_envsubst(&job.src, &source)?,
            });
        }
        Ok(references)
    }

    fn validate_config(&self) -> Result<(), StepError> {
        self.output.validate(&self.name)?;
        if let Some(argv) = &self.check {
            if argv.first().is_none_or(|p| p.is_empty()) {
                return Err(StepError::invalid(format!(
                    "{}: check command: expected a program and its arguments",
                    self.name
                )));
            }
            if !argv.iter().any(|a| a.contains("{}")) {
                return Err(StepError::invalid(format!(
                    "{}: check command {:?}: expected a \"{{}}\" argument for the rendered file",
                    self.name,
                    argv.join(" ")
                )));
            }
        }
        Ok(())
    }

    /// Renders one template. The file work (reading the template, writing and fsyncing the
    /// temp file, the rename) runs off the runtime's thread; rendering, which reads the
    /// context, on it.
    async fn render_one(
        &self,
        ctx: &Context,
        job: &Job,
        swept: &Arc<SweptDirs>,
    ) -> Result<(), StepError> {
        let src = job.src.clone();
        let source = atomic::off_thread(&self.name, move || {
            read_template(&src).map_err(StepError::permanent)
        })
        .await?;
        let (output, secret) = match self.syntax {
            Syntax::Jinja => render_jinja(&self.root(), &job.src, &source, ctx)?,
            Syntax::Envsubst => render_envsubst(&job.src, &source, ctx)?,
        };
        let default = DefaultMode::secret_if(secret);
        let staged = (self.output)
            .stage(&self.name, &job.dest, output.into_bytes(), default, swept)
            .await?;
        if let Some(argv) = &self.check {
            run_check(ctx, &job.dest, argv, staged.temp_path()).await?;
        }
        staged.commit(&self.name).await?;
        tracing::debug!(
            template = %job.src.display(),
            path = %job.dest.display(),
            secret,
            "rendered"
        );
        Ok(())
    }
}

file_output_setters!(
    Render,
    output,
    "template::Render::file(\"a.j2\", \"/config/a\")",
    "every output file",
    "every output file",
    "`0o600` when the template read a secret, else the existing file's mode, or `0o644` less the umask (see [Files](Self#files))."
);

#[async_trait]
impl Step for Render {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.validate_config()?;
        let references = self.scan()?;
        *lock(&self.scanned) = Some(references);
        Ok(())
    }

    /// Nothing: a render writes files, it publishes no value.
    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    /// The `values.*` and `env.*` of every template, found in the parsed templates (see
    /// [Validation](Self#validation)); nothing when the templates cannot be read yet.
    fn reads(&self) -> Vec<Reference> {
        // `Plan::validate` asks right after `validate`, which read and parsed them already.
        match lock(&self.scanned).clone() {
            Some(references) => references,
            None => self.scan().unwrap_or_default(),
        }
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let this = self.clone();
        // One sweep of abandoned temp files per directory for the whole run.
        let swept = Arc::new(SweptDirs::default());
        for job in atomic::off_thread(&self.name, move || this.jobs()).await? {
            self.render_one(ctx, &job, &swept).await?;
        }
        Ok(())
    }
}

fn into_invalid(err: StepError) -> StepError {
    let mut out = StepError::invalid(err.message().to_owned());
    if let Some(source) = err.source() {
        out = out.with_source(source.to_string());
    }
    out
}
