//! One PostgreSQL session: tokio-postgres over TCP, TLS on rustls (a small `MakeTlsConnect`
//! over tokio-rustls), the connection driven in the attempt's own future so that dropping the
//! attempt closes the socket and the server ends the session.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::future::{Either, select};
use init_core::StepError;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::{Client, Config, Connection, Socket};

use super::classify::classify;
use crate::support::db_connect::Settings;
use crate::support::db_tls::{self, TlsMode};

/// How long a finished session may take to say goodbye (a `Terminate` message) before its
/// socket is simply closed.
const GOODBYE: Duration = Duration::from_secs(1);

/// The connection future of a session: it must be polled for the client to make progress.
/// [`run`](Self::run) polls it alongside the work; [`close`](Self::close) ends the session.
pub(crate) struct Driver(Pin<Box<Connection<Socket, RustlsStream>>>);

/// Connects with `settings`; `options` are server settings sent at start-up
/// (`-c name=value ...`). Errors are classified ([`classify`]) and named by `what`.
pub(crate) async fn connect(
    what: &str,
    settings: &Settings,
    options: Option<&str>,
    wait_for_database: bool,
) -> Result<(Client, Driver), StepError> {
    let tls = db_tls::client_config(what, settings.tls, settings.ca_file.as_deref())?;
    let mut config = Config::new();
    config
        .host(&settings.host)
        .port(settings.port)
        .user(&settings.user)
        .application_name("initkit")
        .connect_timeout(settings.connect_timeout)
        .ssl_mode(match settings.tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
    if let Some(database) = &settings.database {
        config.dbname(database);
    }
    if let Some(password) = &settings.password {
        config.password(password.0.as_bytes());
    }
    if let Some(options) = options {
        config.options(options);
    }
    let (client, connection) = config
        .connect(MakeRustls(tls))
        .await
        .map_err(|e| classify(what, e, wait_for_database))?;
    Ok((client, Driver(Box::pin(connection))))
}

impl Driver {
    /// Runs `work` (which uses the client) while the connection is driven. A connection that
    /// ends first is a transient error.
    pub(crate) async fn run<T>(
        &mut self,
        what: &str,
        work: impl Future<Output = Result<T, StepError>>,
    ) -> Result<T, StepError> {
        match select(pin!(work), self.0.as_mut()).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right((ended, _)) => Err(match ended {
                Ok(()) => StepError::transient(format!("{what}: the server closed the connection")),
                Err(e) => classify(what, e, false),
            }),
        }
    }

    /// Ends the session: the client says goodbye (`Terminate`), within a second.
    pub(crate) async fn close(self, client: Client) {
        drop(client);
        let _ = tokio::time::timeout(GOODBYE, self.0).await;
    }
}

/// tokio-postgres's TLS hook over tokio-rustls; `None` for [`TlsMode::Disable`] (never asked to
/// connect then).
#[derive(Clone)]
struct MakeRustls(Option<Arc<ClientConfig>>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let config = self
                .config
                .ok_or_else(|| io::Error::other("tls is disabled"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS connection to the server.
struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (`n,,`), what libpq does with channel_binding=prefer
        // when the client cannot compute it.
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}
