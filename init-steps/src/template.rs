//! `Render`: configuration files from minijinja templates (or envsubst-style templates), one file
//! or a directory tree, written atomically with the right mode, owner and an optional check.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use init_core::{Context, Published, Step, StepError, ValidateContext, async_trait};
use minijinja::value::{Enumerator, Object, ObjectRepr, Rest, Serde, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, State, UndefinedBehavior};
use serde_json::Value as Json;
use sha2::Digest as _;

use crate::atomic::{self, AtomicFile, WriteOptions};
use crate::envsubst;
use crate::hex::hex;
use crate::process_group::{self, RunError, Stream, Tail};

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
/// Filters, besides minijinja's built-in ones (`default`, `indent`, `upper`, `join`, ...):
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
/// must exist when the plan starts): a syntax error, an unknown filter, a missing template file,
/// an invalid mode or an empty check command is found before anything runs.
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
/// assert_eq!(app.name(), "render:/config/app.toml");
/// # let _ = (nginx, legacy);
/// ```
#[derive(Debug, Clone)]
pub struct Render {
    name: String,
    src: PathBuf,
    dest: PathBuf,
    tree: bool,
    syntax: Syntax,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    check: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Jinja,
    Envsubst,
}

/// One template to render: its source file and its destination.
struct Job {
    src: PathBuf,
    dest: PathBuf,
}

impl Render {
    /// Renders the template file `src` into `dest`. The step is named `render:<dest>`.
    ///
    /// ```
    /// # use init_core::Step;
    /// let step = init_steps::template::Render::file("app.toml.j2", "/config/app.toml");
    /// assert_eq!(step.name(), "render:/config/app.toml");
    /// ```
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
    /// assert_eq!(step.name(), "render:/config");
    /// ```
    pub fn dir(src_dir: impl Into<PathBuf>, dest_dir: impl Into<PathBuf>) -> Self {
        Self::new(src_dir.into(), dest_dir.into(), true)
    }

    fn new(src: PathBuf, dest: PathBuf, tree: bool) -> Self {
        Self {
            name: format!("render:{}", dest.display()),
            src,
            dest,
            tree,
            syntax: Syntax::Jinja,
            mode: None,
            owner: None,
            check: None,
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
    pub fn envsubst(mut self) -> Self {
        self.syntax = Syntax::Envsubst;
        self
    }

    /// Sets the mode of every output file (permission bits, at most `0o7777`), instead of
    /// the default (see [Files](Self#files)).
    ///
    /// ```
    /// let step = init_steps::template::Render::file("a.j2", "/config/a").mode(0o640);
    /// # let _ = step;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Sets the owner of every output file (needs the privilege to `chown`).
    ///
    /// ```
    /// let step = init_steps::template::Render::file("a.j2", "/config/a").owner(1000, 1000);
    /// # let _ = step;
    /// ```
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
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
            match self.src.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        }
    }

    fn validate_config(&self) -> Result<(), StepError> {
        atomic::validate_mode(self.mode, &self.name)?;
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
    async fn render_one(&self, ctx: &Context, job: &Job) -> Result<(), StepError> {
        let src = job.src.clone();
        let source = atomic::off_thread(&self.name, move || {
            read_template(&src).map_err(StepError::permanent)
        })
        .await?;
        let (output, secret) = match self.syntax {
            Syntax::Jinja => render_jinja(&self.root(), &job.src, &source, ctx)?,
            Syntax::Envsubst => render_envsubst(&job.src, &source, ctx)?,
        };
        let options = WriteOptions {
            mode: self.mode.or(secret.then_some(0o600)),
            owner: self.owner,
        };
        let dest = job.dest.clone();
        let file = atomic::off_thread(&self.name, move || {
            let mut file = AtomicFile::create(&dest)?;
            file.file_mut()
                .write_all(output.as_bytes())
                .map_err(|e| file.error(e))?;
            drop(output);
            file.finish(options)?;
            Ok(file)
        })
        .await?;
        if let Some(argv) = &self.check {
            run_check(ctx, &job.dest, argv, file.temp_path()).await?;
        }
        atomic::off_thread(&self.name, move || file.commit()).await?;
        tracing::debug!(
            template = %job.src.display(),
            path = %job.dest.display(),
            secret,
            "rendered"
        );
        Ok(())
    }
}

#[async_trait]
impl Step for Render {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.validate_config()?;
        let jobs = self.jobs().map_err(into_invalid)?;
        let env = environment(&self.root(), None);
        for job in &jobs {
            let source = read_template(&job.src).map_err(StepError::invalid)?;
            match self.syntax {
                Syntax::Jinja => check_jinja(&env, &self.root(), &job.src, &source)?,
                Syntax::Envsubst => {
                    envsubst::parse(&source).map_err(|e| {
                        StepError::invalid(format!(
                            "{}:{}: {}",
                            job.src.display(),
                            e.line,
                            e.message
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let this = self.clone();
        for job in atomic::off_thread(&self.name, move || this.jobs()).await? {
            self.render_one(ctx, &job).await?;
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

/// The files under `dir` (relative paths), following symlinks, skipping `..`-names.
fn walk(
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
fn strip_template_suffix(relative: &Path) -> PathBuf {
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
fn read_template(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        StepError::from_error(e)
            .context(format!("{}: cannot read the template", path.display()))
            .to_string()
    })?;
    String::from_utf8(bytes)
        .map_err(|_| format!("{}: the template is not valid UTF-8", path.display()))
}

/// The environment every template renders in: strict undefined, no auto-escaping, the
/// trailing newline kept, our filters, includes confined to `root`; with the render's
/// `tracker` when rendering.
fn environment(root: &Path, tracker: Option<&Arc<Tracker>>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.add_filter("required", filter_required);
    env.add_filter("b64encode", filter_b64encode);
    env.add_filter("b64decode", filter_b64decode);
    env.add_filter("tojson", filter_tojson);
    env.add_filter("sha256", filter_sha256);
    if let Some(tracker) = tracker {
        // A missing value that `default` or `is defined` handled is not the one a later
        // undefined-value error (on a value no tracker sees) should name.
        for name in ["default", "d"] {
            let tracker = Arc::clone(tracker);
            env.add_filter(
                name,
                move |state: &State<'_, '_>, value: &Value, args: Rest<Value>| {
                    tracker.handled(value);
                    minijinja::filters::default(state, value, args)
                },
            );
        }
        for (name, test) in [
            (
                "defined",
                minijinja::tests::is_defined as fn(&Value) -> bool,
            ),
            ("undefined", minijinja::tests::is_undefined),
        ] {
            let tracker = Arc::clone(tracker);
            env.add_test(name, move |value: &Value| {
                tracker.handled(value);
                test(value)
            });
        }
    }
    let root = root.to_path_buf();
    env.set_loader(move |name: &str| {
        let relative = Path::new(name);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!(
                    "template {name:?}: only paths inside the template directory can be loaded"
                ),
            ));
        }
        match std::fs::read_to_string(root.join(relative)) {
            Ok(source) => Ok(Some(source)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                ErrorKind::TemplateNotFound,
                format!("template {name:?}: cannot read it"),
            )
            .with_source(e)),
        }
    });
    env
}

fn filter_required(value: Value, message: Option<String>) -> Result<Value, minijinja::Error> {
    let missing =
        value.is_undefined() || value.is_none() || value.as_str().is_some_and(str::is_empty);
    if missing {
        Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            message.unwrap_or_else(|| "a required value is missing".to_owned()),
        ))
    } else {
        Ok(value)
    }
}

fn bytes_of<'a>(value: &'a Value, filter: &str) -> Result<&'a [u8], minijinja::Error> {
    value.as_bytes().ok_or_else(|| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("{filter} expects a string, got {}", value.kind()),
        )
    })
}

fn filter_b64encode(value: Value) -> Result<String, minijinja::Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes_of(&value, "b64encode")?))
}

fn filter_b64decode(value: Value) -> Result<String, minijinja::Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bytes_of(&value, "b64decode")?)
        .map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "b64decode: the input is not valid base64",
            )
        })?;
    String::from_utf8(bytes).map_err(|_| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8",
        )
    })
}

fn filter_sha256(value: Value) -> Result<String, minijinja::Error> {
    Ok(hex(&sha2::Sha256::digest(bytes_of(&value, "sha256")?)))
}

fn filter_tojson(value: Value, indent: Option<usize>) -> Result<String, minijinja::Error> {
    let failed = |e: serde_json::Error| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "tojson: cannot serialize the value",
        )
        .with_source(e)
    };
    match indent {
        None => serde_json::to_string(&value).map_err(failed),
        Some(width) => {
            // serde_json indents by two spaces, and a JSON line starts with indentation only
            // (strings cannot hold a raw newline).
            let pretty = serde_json::to_string_pretty(&value).map_err(failed)?;
            let lines: Vec<String> = pretty
                .lines()
                .map(|line| {
                    let body = line.trim_start_matches(' ');
                    let depth = (line.len() - body.len()) / 2;
                    format!("{}{body}", " ".repeat(depth * width))
                })
                .collect();
            Ok(lines.join("\n"))
        }
    }
}

/// Parses the template and looks for filters the environment does not know.
fn check_jinja(
    env: &Environment<'static>,
    root: &Path,
    path: &Path,
    source: &str,
) -> Result<(), StepError> {
    let name = path.display().to_string();
    env.template_from_named_str(&name, source)
        .map_err(|e| StepError::invalid(describe_error(&e, &name, root, None)))?;
    for (filter, line) in filter_uses(source) {
        let probe = format!("{{{{ none|{filter} }}}}");
        if env
            .render_str(&probe, ())
            .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter)
        {
            return Err(StepError::invalid(format!(
                "{name}:{line}: unknown filter \"{filter}\""
            )));
        }
    }
    Ok(())
}

/// Renders one template; returns the output and whether it read a secret value.
fn render_jinja(
    root: &Path,
    path: &Path,
    source: &str,
    ctx: &Context,
) -> Result<(String, bool), StepError> {
    let tracker = Arc::new(Tracker::default());
    let env = environment(root, Some(&tracker));
    let name = path.display().to_string();
    let published = ctx.published();
    let context = Value::from_object(Root {
        values: published.clone(),
        env: Arc::new(ctx.env_vars()),
        tracker: Arc::clone(&tracker),
    });
    let result = env
        .template_from_named_str(&name, source)
        .and_then(|template| template.render(context));
    let output = result
        .map_err(|e| StepError::permanent(describe_error(&e, &name, root, Some(&tracker))))?;
    let secret = lock(&tracker.read).iter().any(|n| published.is_secret(n))
        || lock(&tracker.env_read).iter().any(|n| ctx.is_secret_env(n));
    Ok((output, secret))
}

/// `file:line: what`, naming the template that failed (an included one, maybe) and, for an
/// undefined value, the name that was missing.
fn describe_error(
    err: &minijinja::Error,
    main: &str,
    root: &Path,
    tracker: Option<&Tracker>,
) -> String {
    let file = match err.name() {
        Some(name) if name != main => root.join(name).display().to_string(),
        _ => main.to_owned(),
    };
    let what = match err.kind() {
        ErrorKind::UndefinedError => match tracker.and_then(|t| lock(&t.missing).clone()) {
            Some(missing) => format!("undefined value {missing}"),
            None => "undefined value".to_owned(),
        },
        ErrorKind::SyntaxError => match err.detail() {
            Some(detail) => format!("syntax error: {detail}"),
            None => "syntax error".to_owned(),
        },
        kind => match err.detail() {
            Some(detail) => detail.to_owned(),
            None => kind.to_string(),
        },
    };
    match err.line() {
        Some(line) => format!("{file}:{line}: {what}"),
        None => format!("{file}: {what}"),
    }
}

/// Every filter a template applies, with its line: names after a `|` and after `{% filter`,
/// inside `{{ }}` and `{% %}` (strings, comments and raw blocks skipped). Run on a template
/// that parsed, so its blocks are well formed.
fn filter_uses(source: &str) -> Vec<(String, usize)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let line_at = |pos: usize| source[..pos].matches('\n').count() + 1;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'#') => {
                i = source[i + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |end| i + 2 + end + 2);
            }
            (b'{', open @ (b'{' | b'%')) => {
                let close = if open == b'{' { "}}" } else { "%}" };
                let start = i + 2;
                let end = expression_end(bytes, start, close.as_bytes());
                let block = &source[start..end];
                let words: Vec<&str> = block
                    .trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '+')
                    .split_whitespace()
                    .take(2)
                    .collect();
                if open == b'%' && words.first() == Some(&"raw") {
                    i = source[end..]
                        .find("endraw")
                        .map_or(bytes.len(), |p| end + p);
                    continue;
                }
                if open == b'%'
                    && words.first() == Some(&"filter")
                    && let Some(name) = words.get(1)
                {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push((name, line_at(start)));
                }
                collect_pipes(bytes, start, end, &mut out, &line_at);
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    out
}

/// Where the block starting at `start` closes (`close`), skipping string literals.
fn expression_end(bytes: &[u8], start: usize, close: &[u8]) -> usize {
    let mut i = start;
    let mut quote = None;
    while i < bytes.len() {
        match quote {
            Some(q) => {
                if bytes[i] == b'\\' {
                    i += 1;
                } else if bytes[i] == q {
                    quote = None;
                }
            }
            None if bytes[i] == b'"' || bytes[i] == b'\'' => quote = Some(bytes[i]),
            None if bytes[i..].starts_with(close) => return i,
            None => {}
        }
        i += 1;
    }
    bytes.len()
}

fn collect_pipes(
    bytes: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<(String, usize)>,
    line_at: &dyn Fn(usize) -> usize,
) {
    let mut i = start;
    let mut quote = None;
    while i < end {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'|' => {
                let mut j = i + 1;
                while j < end && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let name_start = j;
                while j < end && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                if j > name_start {
                    let name = String::from_utf8_lossy(&bytes[name_start..j]).into_owned();
                    out.push((name, line_at(name_start)));
                }
            }
            None => {}
        }
        i += 1;
    }
}

/// What a render looked up: the published values it read (top-level names), the environment
/// variables it read, and the last lookup that found nothing (named in an undefined-value
/// error).
#[derive(Debug, Default)]
struct Tracker {
    read: Mutex<BTreeSet<String>>,
    env_read: Mutex<BTreeSet<String>>,
    missing: Mutex<Option<String>>,
}

impl Tracker {
    fn missing(&self, name: String) {
        *lock(&self.missing) = Some(name);
    }

    /// `value` was tested or given a default: when it is the missing one, it is forgotten.
    fn handled(&self, value: &Value) {
        if value.is_undefined() {
            *lock(&self.missing) = None;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The template's root context: `values` and `env`.
#[derive(Debug)]
struct Root {
    values: Published,
    env: Arc<BTreeMap<String, String>>,
    tracker: Arc<Tracker>,
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "values" => Some(Value::from_object(Values {
                published: self.values.clone(),
                tracker: Arc::clone(&self.tracker),
            })),
            "env" => Some(Value::from_object(EnvVars {
                vars: Arc::clone(&self.env),
                tracker: Arc::clone(&self.tracker),
            })),
            other => {
                self.tracker.missing(other.to_owned());
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["values", "env"])
    }
}

/// `values`: records which published values the template reads.
#[derive(Debug)]
struct Values {
    published: Published,
    tracker: Arc<Tracker>,
}

impl Object for Values {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.published.get(key) {
            Some(value) => {
                lock(&self.tracker.read).insert(key.to_owned());
                Some(node(value, format!("values.{key}"), &self.tracker))
            }
            None => {
                self.tracker.missing(format!("values.{key}"));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Iterating (or serializing) `values` reads all of them.
        let names = self.published.values().keys();
        lock(&self.tracker.read).extend(names.clone().cloned());
        Enumerator::Values(names.map(|k| Value::from(k.as_str())).collect())
    }
}

/// `env`: the environment, recording missing names.
#[derive(Debug)]
struct EnvVars {
    vars: Arc<BTreeMap<String, String>>,
    tracker: Arc<Tracker>,
}

impl Object for EnvVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.vars.get(key) {
            Some(value) => {
                lock(&self.tracker.env_read).insert(key.to_owned());
                Some(Value::from(value.as_str()))
            }
            None => {
                self.tracker.missing(format!("env.{key}"));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // Iterating (or serializing) `env` reads all of it.
        lock(&self.tracker.env_read).extend(self.vars.keys().cloned());
        Enumerator::Values(self.vars.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

/// A JSON object or array inside `values`, recording missing keys by their full path.
#[derive(Debug)]
struct Node {
    json: Json,
    path: String,
    tracker: Arc<Tracker>,
}

fn node(json: &Json, path: String, tracker: &Arc<Tracker>) -> Value {
    match json {
        Json::Object(_) | Json::Array(_) => Value::from_object(Node {
            json: json.clone(),
            path,
            tracker: Arc::clone(tracker),
        }),
        Json::String(s) => Value::from(s.as_str()),
        other => Value::from(Serde(other)),
    }
}

impl Object for Node {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (found, path) = match &self.json {
            Json::Object(map) => {
                let key = key.as_str()?;
                (map.get(key), format!("{}.{key}", self.path))
            }
            Json::Array(items) => {
                let index = usize::try_from(key.clone()).ok()?;
                (items.get(index), format!("{}[{index}]", self.path))
            }
            _ => return None,
        };
        match found {
            Some(value) => Some(node(value, path, &self.tracker)),
            None => {
                self.tracker.missing(path);
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.json {
            Json::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Json::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }
}

/// Substitutes the environment into an envsubst template; returns the output and whether it
/// read a secret environment variable.
fn render_envsubst(path: &Path, source: &str, ctx: &Context) -> Result<(String, bool), StepError> {
    let pieces = envsubst::parse(source).map_err(|e| {
        StepError::permanent(format!("{}:{}: {}", path.display(), e.line, e.message))
    })?;
    let mut out = String::with_capacity(source.len());
    let mut secret = false;
    for piece in pieces {
        match piece {
            envsubst::Piece::Text(text) => out.push_str(text),
            envsubst::Piece::Var {
                name,
                default,
                line,
            } => match (
                ctx.env(name).inspect(|_| secret |= ctx.is_secret_env(name)),
                default,
            ) {
                (Some(value), Some(envsubst::Default::IfEmpty(_))) if !value.is_empty() => {
                    out.push_str(&value);
                }
                (Some(value), None | Some(envsubst::Default::IfUnset(_))) => out.push_str(&value),
                (_, Some(envsubst::Default::IfEmpty(d) | envsubst::Default::IfUnset(d))) => {
                    out.push_str(d);
                }
                (None, None) => {
                    return Err(StepError::permanent(format!(
                        "{}:{line}: variable {name} is not set",
                        path.display()
                    )));
                }
            },
        }
    }
    Ok((out, secret))
}

/// How long a check command's processes get between `SIGTERM` and `SIGKILL` when the attempt
/// is dropped.
const CHECK_GRACE: Duration = Duration::from_secs(5);
/// How many of the last lines of each of the check's output streams are kept for its error.
const CHECK_TAIL: usize = 10;

/// Runs the check command on the temp file, in its own process group with the context's
/// environment; keeps the last lines of its output (masked) for the error message.
async fn run_check(
    ctx: &Context,
    dest: &Path,
    argv: &[String],
    temp: &Path,
) -> Result<(), StepError> {
    let temp = temp.to_string_lossy();
    let args: Vec<String> = argv.iter().map(|a| a.replace("{}", &temp)).collect();
    let shown = argv.join(" ");
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..]).env_clear().envs(ctx.env_vars());
    let (mut stdout, mut stderr) = (Tail::new(CHECK_TAIL), Tail::new(CHECK_TAIL));
    let mut on_line = |stream: Stream, line: &str| match stream {
        Stream::Stdout => stdout.push(line),
        Stream::Stderr => stderr.push(line),
    };
    let status = match process_group::run(&mut cmd, ctx, CHECK_GRACE, &mut on_line).await {
        Ok(status) => status,
        Err(RunError::Spawn(err)) => {
            return Err(StepError::permanent(format!(
                "{}: check \"{shown}\": cannot start it",
                dest.display()
            ))
            .with_source(err));
        }
        Err(RunError::Wait(err)) => {
            return Err(StepError::transient(format!(
                "{}: check \"{shown}\": wait",
                dest.display()
            ))
            .with_source(err));
        }
    };
    if status.success() {
        return Ok(());
    }
    let shown_lines = if stderr.is_empty() { &stdout } else { &stderr };
    // Masked in the stream, before it is cut: a secret across the cut would leave its tail.
    let tail = tail_lines(shown_lines.lines(), 3, 400);
    let status = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    };
    let mut message = format!("{}: check \"{shown}\" failed ({status})", dest.display());
    if !tail.is_empty() {
        message.push_str(": ");
        message.push_str(&tail);
    }
    Err(StepError::permanent(message))
}

/// The last `lines` of `kept` (trimmed), joined by ` / `, at most `max` characters.
fn tail_lines<'a>(
    kept: impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator,
    lines: usize,
    max: usize,
) -> String {
    let kept: Vec<&str> = kept.map(str::trim).collect();
    let joined = kept[kept.len().saturating_sub(lines)..].join(" / ");
    let count = joined.chars().count();
    if count <= max {
        joined
    } else {
        let skip = count - max;
        format!("…{}", joined.chars().skip(skip + 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_outside_strings_comments_and_raw_blocks() {
        let source = "{# x|nope #}{{ a | upper }}\n{% raw %}{{ b|nope }}{% endraw %}\n\
                      {{ \"|nope\" ~ c|lower }}\n{% filter trim %}x{% endfilter %}";
        let names: Vec<(String, usize)> = filter_uses(source);
        assert_eq!(
            names,
            [
                ("upper".to_owned(), 1),
                ("lower".to_owned(), 3),
                ("trim".to_owned(), 4)
            ]
        );
    }

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

    #[test]
    fn tails_the_last_lines() {
        let mut kept = Tail::new(10);
        for line in ["a", "", " b ", "c", "d"] {
            kept.push(line);
        }
        assert_eq!(tail_lines(kept.lines(), 3, 100), "b / c / d");
        assert_eq!(tail_lines(["abcdef"].into_iter(), 3, 4), "…def");
    }
}
