//! `RedisWait`: waits until Redis accepts a login, answers `PING` with `PONG` and, optionally,
//! holds a key. A lean RESP client (<https://redis.io/docs/latest/develop/reference/protocol-spec/>)
//! over TCP or TLS (rustls): three commands need a few dozen lines, not the `redis` crate.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use init_core::{
    Context, Policy, Publication, Reference, Step, StepError, ValidateContext, async_trait,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::db_credentials::credential_setters;
use crate::support::db_settings::{Source, check_transport, connection_reads, lookup};
pub use crate::support::db_tls::TlsMode;
use crate::support::db_tls::{self, classify_io};

/// The longest reply line read (a `PING` or `EXISTS` answer is a few bytes).
const MAX_LINE: usize = 64 * 1024;

/// Waits until Redis accepts a login, answers `PING` with `PONG` and, when asked, holds a key.
///
/// Authenticates with `AUTH password` or, with [`user`](Self::user) or
/// [`user_from_value`](Self::user_from_value), `AUTH user password` (an ACL user); the password
/// comes from the environment or a published value (declared as reads, as the SQL database
/// steps do) and is registered as a secret.
///
/// # Errors and cadence
///
/// `LOADING` (the dataset is being loaded), `BUSY`, `MASTERDOWN` and `TRYAGAIN` are transient;
/// `WRONGPASS`, `NOAUTH`, `NOPERM` and other errors permanent. A refused connection is tried
/// again after 10 ms; a missing key is transient. A certificate that does not verify is
/// permanent.
///
/// # Default
///
/// | setting | default |
/// |---|---|
/// | policy | [`Policy::wait`] |
/// | password | none (no `AUTH`) |
/// | TLS | [`TlsMode::Disable`] |
/// | connect timeout | 3 s |
/// | name | `redis ` and the address, e.g. `redis cache:6379` |
///
/// # Examples
///
/// ```no_run
/// use init_core::prelude::*;
/// use init_steps::redis::RedisWait;
///
/// fn main() -> std::process::ExitCode {
///     Plan::new("orders-init")
///         .step(RedisWait::new("redis:6379").password_from_env("REDIS_PASSWORD").key_exists("orders:ready"))
///         .run_main()
/// }
/// ```
#[derive(Debug)]
pub struct RedisWait {
    name: String,
    address: String,
    user: Option<Source>,
    password: Option<Source>,
    key: Option<String>,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
}

credential_setters! {
    RedisWait in redis, "cache:6379", "Logs in as ACL user `user` (`AUTH user password`, which needs a password) instead of `default`";
    user: user, password: password, value "redis", env "REDIS_PASSWORD";
}

impl RedisWait {
    /// Waits for the server at `host:port` (checked by [`validate`](Step::validate)).
    ///
    /// ```
    /// use init_core::Step;
    /// assert_eq!(init_steps::redis::RedisWait::new("cache:6379").name(), "redis cache:6379");
    /// ```
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        Self {
            name: format!("redis {address}"),
            address,
            user: None,
            password: None,
            key: None,
            tls: TlsMode::Disable,
            ca_file: None,
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// Also waits until `key` exists (`EXISTS key` answers 1).
    ///
    /// ```
    /// let wait = init_steps::redis::RedisWait::new("cache:6379").key_exists("orders:ready");
    /// ```
    #[must_use]
    pub fn key_exists(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Whether and how to use TLS ([`TlsMode::Disable`] by default).
    ///
    /// ```
    /// use init_steps::redis::{RedisWait, TlsMode};
    /// let wait = RedisWait::new("cache:6380").tls(TlsMode::VerifyFull).ca_file("/etc/ssl/redis-ca.pem");
    /// ```
    #[must_use]
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = mode;
        self
    }

    /// The PEM file of the CA for [`TlsMode::VerifyFull`] (else the system roots).
    ///
    /// ```
    /// use init_steps::redis::{RedisWait, TlsMode};
    /// let wait = RedisWait::new("cache:6380").tls(TlsMode::VerifyFull).ca_file("/ca.pem");
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Bounds the TCP connection and TLS handshake of one attempt (3 s by default).
    ///
    /// ```
    /// use std::time::Duration;
    /// let wait = init_steps::redis::RedisWait::new("cache:6379").connect_timeout(Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn host_port(&self) -> Result<(&str, u16), StepError> {
        let invalid = || {
            StepError::invalid(format!(
                "{}: address {:?}: expected host:port",
                self.name, self.address
            ))
        };
        let (host, port) = self.address.rsplit_once(':').ok_or_else(invalid)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match port.parse::<u16>() {
            Ok(port) if port > 0 && !host.is_empty() => Ok((host, port)),
            _ => Err(invalid()),
        }
    }

    /// The arguments of `AUTH` (`[user] password`; empty without a password: no `AUTH`), from
    /// the environment alone at validation (`ctx` `None`: a published value is not known yet)
    /// or for one attempt, which registers the password as a secret.
    fn credentials(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        ctx: Option<&Context>,
    ) -> Result<Vec<String>, StepError> {
        let Some(password) = &self.password else {
            return Ok(Vec::new());
        };
        let mut auth = Vec::new();
        if let Some(user) = &self.user {
            auth.extend(lookup(&self.name, user, env, ctx)?);
        }
        if let Some(password) = lookup(&self.name, password, env, ctx)? {
            if let Some(ctx) = ctx {
                ctx.register_secret(&password);
            }
            auth.push(password);
        }
        Ok(auth)
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        auth: Vec<String>,
    ) -> Result<(), StepError> {
        let mut conn = BufReader::new(stream);
        if !auth.is_empty() {
            let args: Vec<&str> = ["AUTH"]
                .into_iter()
                .chain(auth.iter().map(String::as_str))
                .collect();
            self.expect(&mut conn, &args, "+OK").await?;
        }
        self.expect(&mut conn, &["PING"], "+PONG").await?;
        if let Some(key) = &self.key {
            let reply = self.command(&mut conn, &["EXISTS", key]).await?;
            if reply != ":1" {
                return Err(StepError::transient(format!(
                    "{}: key {key:?} does not exist yet",
                    self.name
                )));
            }
        }
        let _ = self.command(&mut conn, &["QUIT"]).await;
        Ok(())
    }

    async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut BufReader<S>,
        args: &[&str],
        expected: &str,
    ) -> Result<(), StepError> {
        let reply = self.command(conn, args).await?;
        if reply == expected {
            Ok(())
        } else {
            Err(StepError::permanent(format!(
                "{}: {}: unexpected reply {:?}",
                self.name,
                args[0],
                reply.chars().take(64).collect::<String>()
            )))
        }
    }

    /// Sends one command; its reply line (`+PONG`, `:1`), or the classified `-ERROR`.
    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut BufReader<S>,
        args: &[&str],
    ) -> Result<String, StepError> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        let io_error = |e: io::Error| classify_io(&self.name, e);
        conn.get_mut().write_all(&request).await.map_err(io_error)?;
        conn.get_mut().flush().await.map_err(io_error)?;
        let mut line = Vec::new();
        let read = (&mut *conn)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(io_error)?;
        if read == 0 {
            return Err(StepError::transient(format!(
                "{}: the server closed the connection",
                self.name
            )));
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        match line.strip_prefix('-') {
            Some(error) => Err(classify_reply(&self.name, args[0], error)),
            None => Ok(line),
        }
    }
}

/// An error reply by its first word, as Redis documents them.
fn classify_reply(what: &str, command: &str, error: &str) -> StepError {
    let word = error.split_whitespace().next().unwrap_or_default();
    let message = format!("{what}: {command}: {error}");
    match word {
        "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" => {
            StepError::transient(message)
        }
        _ => StepError::permanent(message),
    }
}

#[async_trait]
impl Step for RedisWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    /// The user's and password's published values, or their environment variables (guarded:
    /// `validate` checks them and names the step; declared for the dry run).
    fn reads(&self) -> Vec<Reference> {
        connection_reads(None, self.user.as_ref(), self.password.as_ref())
    }

    fn validate(&self, cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.host_port()?;
        self.credentials(&|key| cx.env(key), None)?;
        if self.user.is_some() && self.password.is_none() {
            return Err(StepError::invalid(format!(
                "{}: an ACL user needs a password",
                self.name
            )));
        }
        check_transport(self.tls, self.ca_file.is_some(), self.connect_timeout)
            .map_err(|m| StepError::invalid(format!("{}: {m}", self.name)))
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let (host, port) = self
            .host_port()
            .map_err(|e| StepError::permanent(e.message().to_owned()))?;
        let auth = self
            .credentials(&|key| ctx.env(key), Some(ctx))
            .map_err(|e| StepError::permanent(e.message().to_owned()))?;
        let tls = db_tls::client_config(&self.name, self.tls, self.ca_file.as_deref())?;
        let connect = async {
            let tcp = TcpStream::connect((host, port))
                .await
                .map_err(|e| classify_io(&self.name, e))?;
            let _ = tcp.set_nodelay(true);
            match tls {
                None => Ok(Stream::Plain(tcp)),
                Some(config) => connect_tls(&self.name, config, host, tcp).await,
            }
        };
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                StepError::transient(format!(
                    "{}: no answer within {:?}",
                    self.name, self.connect_timeout
                ))
            })??;
        match stream {
            Stream::Plain(tcp) => self.session(tcp, auth).await,
            Stream::Tls(tls) => self.session(tls, auth).await,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect_tls(
    what: &str,
    config: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<Stream, StepError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| StepError::permanent(format!("{what}: tls server name")).with_source(e))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| classify_io(what, e))?;
    Ok(Stream::Tls(Box::new(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_classified_by_their_first_word() {
        let loading = classify_reply(
            "redis c:1",
            "PING",
            "LOADING Redis is loading the dataset in memory",
        );
        let wrongpass = classify_reply(
            "redis c:1",
            "AUTH",
            "WRONGPASS invalid username-password pair",
        );
        let noauth = classify_reply("redis c:1", "PING", "NOAUTH Authentication required.");
        assert!(loading.is_transient());
        assert!(wrongpass.is_permanent());
        assert!(noauth.is_permanent());
        assert_eq!(
            noauth.to_string(),
            "redis c:1: PING: NOAUTH Authentication required."
        );
    }
}
