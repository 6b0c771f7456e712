//! An HTTP double of Vault's API (<https://developer.hashicorp.com/vault/api-docs>), stateful
//! and on a real loopback socket, for the `vault` tests.
//!
//! It serves the documented paths with the documented JSON shapes, status codes and headers:
//! tokens with path-prefix permissions (`auth/token/lookup-self`, `auth/token/revoke-self`),
//! KV version 1 and 2 engines with versions, deletions and destructions, the AppRole,
//! Kubernetes and JWT auth methods, a PKI engine that issues real certificates signed by a CA it
//! made, and `sys/health` in every state. Faults can be injected: a sequence of error replies,
//! dropped connections, delays, a redirect to another server.
//!
//! Every request is recorded (method, path, headers, body) for assertions.
#![allow(dead_code)] // Each test uses part of the double.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The state of the node as `sys/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// 200: initialized, unsealed, active.
    Active,
    /// 429: unsealed standby.
    Standby,
    /// 473: performance standby.
    PerfStandby,
    /// 472: disaster-recovery secondary.
    DrSecondary,
    /// 503: sealed (every other path answers 503 "Vault is sealed").
    Sealed,
    /// 501: not initialized (every other path answers 503 "Vault is sealed").
    Uninitialized,
    /// 530: this node was removed from its cluster (`removed_from_cluster: true`).
    Removed,
}

/// A request the double received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// The path and query, such as `/v1/secret/data/orders/db?version=2`.
    pub(crate) path: String,
    /// Lowercase header names.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Debug)]
enum Fault {
    /// Answer with this status and these `errors`.
    Status(u16, Vec<String>),
    /// Close the connection without answering.
    Drop,
    /// Wait, then answer normally.
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Token {
    policies: Vec<String>,
    /// Path prefixes (below `/v1/`) the token may use; `""` allows everything (root).
    prefixes: Vec<String>,
    accessor: String,
    ttl: u64,
    from_login: bool,
}

#[derive(Debug, Clone)]
struct KvVersion {
    data: Value,
    created: String,
    deleted: Option<String>,
    destroyed: bool,
}

#[derive(Debug)]
enum Engine {
    KvV1(BTreeMap<String, Value>),
    KvV2(BTreeMap<String, Vec<KvVersion>>),
    Pki(Box<Pki>),
}

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    roles: HashMap<String, PkiRole>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct PkiRole {
    allowed_domains: Vec<String>,
    allow_subdomains: bool,
    allow_ip_sans: bool,
    max_ttl: Duration,
}

#[derive(Debug, Clone)]
struct Role {
    policies: Vec<String>,
    prefixes: Vec<String>,
    ttl: u64,
}

#[derive(Debug)]
enum AuthMethod {
    AppRole(HashMap<String, (String, Option<String>, Role)>), // role_id -> (name, secret_id, role)
    Kubernetes(HashMap<String, (Vec<String>, Vec<String>, Role)>), // role -> (sa names, namespaces, role)
    Jwt(HashMap<String, (String, String, Role)>), // role -> (bound subject, audience, role)
}

#[derive(Debug)]
struct State {
    health: Health,
    tokens: HashMap<String, Token>,
    engines: BTreeMap<String, Engine>,
    auth: BTreeMap<String, AuthMethod>,
    faults: VecDeque<Fault>,
    redirect_to: Option<String>,
    requests: Vec<Recorded>,
}

/// A running double. Dropping it stops the server.
pub(crate) struct VaultDouble {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for VaultDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The root token every double knows.
pub(crate) const ROOT_TOKEN: &str = "hvs.root-double-token";

impl VaultDouble {
    /// Starts an active, unsealed Vault with no engines, knowing only [`ROOT_TOKEN`], on plain
    /// HTTP.
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Like [`start`](Self::start), over TLS with this certificate chain and key (PEM).
    pub(crate) async fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_tls_with(cert_pem, key_pem, None).await
    }

    /// Like [`start_tls`](Self::start_tls), and only clients presenting a certificate signed
    /// by `client_ca_pem` get past the handshake (Vault's `tls_require_and_verify_client_cert`,
    /// developer.hashicorp.com/vault/docs/configuration/listener/tcp).
    pub(crate) async fn start_mtls(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Self {
        Self::start_tls_with(cert_pem, key_pem, Some(client_ca_pem)).await
    }

    async fn start_tls_with(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tokens = HashMap::new();
        tokens.insert(
            ROOT_TOKEN.to_owned(),
            Token {
                policies: vec!["root".into()],
                prefixes: vec![String::new()],
                accessor: random_id(),
                ttl: 0,
                from_login: false,
            },
        );
        let state = Arc::new(Mutex::new(State {
            health: Health::Active,
            tokens,
            engines: BTreeMap::new(),
            auth: BTreeMap::new(),
            faults: VecDeque::new(),
            redirect_to: None,
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A client that does not trust the certificate ends here.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(stream, state).await;
                            }
                        }
                        None => serve_connection(stream, state).await,
                    }
                });
            }
        });
        Self {
            addr,
            scheme,
            state,
            server,
        }
    }

    /// `http://127.0.0.1:<port>` (`https` over TLS).
    pub(crate) fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    // ---- set-up -------------------------------------------------------------------------

    /// Adds a token allowed the paths under `prefixes` (below `/v1/`).
    pub(crate) fn add_token(&self, token: &str, prefixes: &[&str]) {
        self.with(|s| {
            s.tokens.insert(
                token.to_owned(),
                Token {
                    policies: vec!["default".into(), "test".into()],
                    prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
                    accessor: random_id(),
                    ttl: 3600,
                    from_login: false,
                },
            );
        });
    }

    pub(crate) fn enable_kv_v1(&self, mount: &str) {
        self.with(|s| {
            s.engines
                .insert(mount.to_owned(), Engine::KvV1(BTreeMap::new()))
        });
    }

    pub(crate) fn enable_kv_v2(&self, mount: &str) {
        self.with(|s| {
            s.engines
                .insert(mount.to_owned(), Engine::KvV2(BTreeMap::new()))
        });
    }

    /// Writes a secret (a new version on KV v2); returns the version (0 on KV v1).
    pub(crate) fn kv_put(&self, mount: &str, path: &str, data: Value) -> u64 {
        self.with(|s| match s.engines.get_mut(mount) {
            Some(Engine::KvV1(map)) => {
                map.insert(path.to_owned(), data);
                0
            }
            Some(Engine::KvV2(map)) => {
                let versions = map.entry(path.to_owned()).or_default();
                versions.push(KvVersion {
                    data,
                    created: now_rfc3339(),
                    deleted: None,
                    destroyed: false,
                });
                versions.len() as u64
            }
            _ => panic!("no kv engine at {mount}"),
        })
    }

    /// Soft-deletes a KV v2 version.
    pub(crate) fn kv_delete(&self, mount: &str, path: &str, version: u64) {
        self.kv_version(mount, path, version, |v| {
            v.deleted = Some("2024-05-01T10:00:00.000000Z".into())
        });
    }

    /// Destroys a KV v2 version (its data is gone for good).
    pub(crate) fn kv_destroy(&self, mount: &str, path: &str, version: u64) {
        self.kv_version(mount, path, version, |v| {
            v.destroyed = true;
            v.data = Value::Null;
        });
    }

    fn kv_version(&self, mount: &str, path: &str, version: u64, f: impl FnOnce(&mut KvVersion)) {
        self.with(|s| match s.engines.get_mut(mount) {
            Some(Engine::KvV2(map)) => f(&mut map.get_mut(path).unwrap()[version as usize - 1]),
            _ => panic!("no kv v2 engine at {mount}"),
        });
    }

    /// Enables AppRole at `mount` (if needed) and adds a role.
    pub(crate) fn add_approle(
        &self,
        mount: &str,
        name: &str,
        role_id: &str,
        secret_id: Option<&str>,
        prefixes: &[&str],
    ) {
        self.with(|s| {
            let method = s
                .auth
                .entry(mount.to_owned())
                .or_insert_with(|| AuthMethod::AppRole(HashMap::new()));
            let AuthMethod::AppRole(roles) = method else {
                panic!("{mount} is not approle")
            };
            roles.insert(
                role_id.to_owned(),
                (
                    name.to_owned(),
                    secret_id.map(str::to_owned),
                    role(name, prefixes),
                ),
            );
        });
    }

    /// Enables Kubernetes auth at `mount` (if needed) and adds a role bound to service-account
    /// names and namespaces.
    pub(crate) fn add_kubernetes_role(
        &self,
        mount: &str,
        name: &str,
        service_accounts: &[&str],
        namespaces: &[&str],
        prefixes: &[&str],
    ) {
        self.with(|s| {
            let method = s
                .auth
                .entry(mount.to_owned())
                .or_insert_with(|| AuthMethod::Kubernetes(HashMap::new()));
            let AuthMethod::Kubernetes(roles) = method else {
                panic!("{mount} is not kubernetes")
            };
            roles.insert(
                name.to_owned(),
                (
                    service_accounts.iter().map(|s| (*s).to_owned()).collect(),
                    namespaces.iter().map(|s| (*s).to_owned()).collect(),
                    role(name, prefixes),
                ),
            );
        });
    }

    /// Enables JWT auth at `mount` (if needed) and adds a role bound to a subject and audience.
    pub(crate) fn add_jwt_role(
        &self,
        mount: &str,
        name: &str,
        subject: &str,
        audience: &str,
        prefixes: &[&str],
    ) {
        self.with(|s| {
            let method = s
                .auth
                .entry(mount.to_owned())
                .or_insert_with(|| AuthMethod::Jwt(HashMap::new()));
            let AuthMethod::Jwt(roles) = method else {
                panic!("{mount} is not jwt")
            };
            roles.insert(
                name.to_owned(),
                (
                    subject.to_owned(),
                    audience.to_owned(),
                    role(name, prefixes),
                ),
            );
        });
    }

    /// Enables a PKI engine at `mount` with a fresh root CA; returns the CA certificate (PEM).
    pub(crate) fn enable_pki(&self, mount: &str) -> String {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "initkit double root CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = (SystemTime::now() - Duration::from_secs(3600)).into();
        params.not_after = (SystemTime::now() + Duration::from_secs(10 * 365 * 86400)).into();
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        let ca_pem = ca.pem();
        let issuer = rcgen::Issuer::new(params, key);
        self.with(|s| {
            s.engines.insert(
                mount.to_owned(),
                Engine::Pki(Box::new(Pki {
                    ca_pem: ca_pem.clone(),
                    issuer,
                    roles: HashMap::new(),
                })),
            )
        });
        ca_pem
    }

    /// Adds a PKI role allowing `allowed_domains` (and their subdomains when asked).
    pub(crate) fn add_pki_role(
        &self,
        mount: &str,
        name: &str,
        allowed_domains: &[&str],
        allow_subdomains: bool,
        max_ttl: Duration,
    ) {
        self.with(|s| match s.engines.get_mut(mount) {
            Some(Engine::Pki(pki)) => {
                pki.roles.insert(
                    name.to_owned(),
                    PkiRole {
                        allowed_domains: allowed_domains.iter().map(|d| (*d).to_owned()).collect(),
                        allow_subdomains,
                        allow_ip_sans: true,
                        max_ttl,
                    },
                );
            }
            _ => panic!("no pki engine at {mount}"),
        });
    }

    pub(crate) fn set_health(&self, health: Health) {
        self.with(|s| s.health = health);
    }

    // ---- faults -------------------------------------------------------------------------

    /// The next `n` requests get `status` with these `errors`.
    pub(crate) fn fail_next(&self, n: usize, status: u16, errors: &[&str]) {
        self.with(|s| {
            for _ in 0..n {
                s.faults.push_back(Fault::Status(
                    status,
                    errors.iter().map(|e| (*e).to_owned()).collect(),
                ));
            }
        });
    }

    /// The next `n` requests have their connection closed without an answer.
    pub(crate) fn drop_next(&self, n: usize) {
        self.with(|s| (0..n).for_each(|_| s.faults.push_back(Fault::Drop)));
    }

    /// The next request is answered after `delay`.
    pub(crate) fn delay_next(&self, delay: Duration) {
        self.with(|s| s.faults.push_back(Fault::Delay(delay)));
    }

    /// Every request is answered with a 307 to the same path at `base` (as a standby node
    /// redirects to the active one).
    pub(crate) fn redirect_to(&self, base: &str) {
        self.with(|s| s.redirect_to = Some(base.to_owned()));
    }

    // ---- inspection ---------------------------------------------------------------------

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    /// The tokens made by logins that are still valid.
    pub(crate) fn login_tokens(&self) -> Vec<String> {
        self.with(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.from_login)
                .map(|(k, _)| k.clone())
                .collect()
        })
    }

    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.with(|s| s.tokens.contains_key(token))
    }
}

fn role(name: &str, prefixes: &[&str]) -> Role {
    Role {
        policies: vec!["default".into(), name.to_owned()],
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        ttl: 1800,
    }
}

// ---- the server -----------------------------------------------------------------------------

async fn serve_connection<I>(io: I, state: Arc<Mutex<State>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { serve(state, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it:
/// `(ca_pem, cert_pem, key_pem)`.
pub(crate) fn tls_identity() -> (String, String, String) {
    ca_and_leaf("vault double TLS CA", &["127.0.0.1", "localhost"])
}

/// A client CA and a client certificate signed by it, for mTLS: `(ca_pem, cert_pem, key_pem)`.
pub(crate) fn client_identity() -> (String, String, String) {
    ca_and_leaf("vault double client CA", &["initkit-client"])
}

fn ca_and_leaf(ca_name: &str, leaf_names: &[&str]) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let names: Vec<String> = leaf_names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

async fn serve(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), 16 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or("<binary>").to_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if let Some(base) = &s.redirect_to {
            return Ok(Response::builder()
                .status(307)
                .header("location", format!("{base}{path}"))
                .header("cache-control", "no-store")
                .body(Body::empty())
                .unwrap());
        }
        s.faults.pop_front()
    };
    match fault {
        Some(Fault::Drop) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault: connection dropped",
            ));
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Status(status, errors)) => return Ok(errors_reply(status, &errors)),
        None => {}
    }
    let mut s = state.lock().unwrap();
    Ok(route(&mut s, &parts.method, &path, &parts.headers, &body))
}

fn route(
    s: &mut State,
    method: &Method,
    full_path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<Body> {
    let (path, query) = full_path.split_once('?').unwrap_or((full_path, ""));
    let Some(api) = path.strip_prefix("/v1/") else {
        return errors_reply(404, &[]);
    };
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);

    // sys/health: https://developer.hashicorp.com/vault/api-docs/system/health
    if api == "sys/health" {
        return health_reply(s.health);
    }
    if matches!(s.health, Health::Sealed | Health::Uninitialized) {
        return errors_reply(503, &["Vault is sealed".into()]);
    }

    // Logins need no token.
    if let Some(mount) = api
        .strip_prefix("auth/")
        .and_then(|r| r.strip_suffix("/login"))
        && mount != "token"
    {
        if method != Method::POST && method != Method::PUT {
            return errors_reply(405, &[]);
        }
        return login(s, mount, &body);
    }

    // Everything else needs a token allowed for the path.
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some((token_id, token)) = token.and_then(|t| s.tokens.get(&t).cloned().map(|tok| (t, tok)))
    else {
        return errors_reply(403, &["permission denied".into()]);
    };
    match api {
        // https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self
        "auth/token/lookup-self" => {
            return ok_reply(
                json!({
                    "accessor": token.accessor, "creation_ttl": token.ttl, "display_name": "token",
                    "entity_id": "", "expire_time": null, "explicit_max_ttl": 0, "id": token_id,
                    "meta": null, "num_uses": 0, "orphan": true, "path": "auth/token/create",
                    "policies": token.policies, "renewable": token.ttl > 0, "ttl": token.ttl,
                    "type": "service"
                }),
                0,
            );
        }
        // https://developer.hashicorp.com/vault/api-docs/auth/token#revoke-a-token-self
        "auth/token/revoke-self" => {
            if method != Method::POST && method != Method::PUT {
                return errors_reply(405, &[]);
            }
            s.tokens.remove(&token_id);
            return Response::builder().status(204).body(Body::empty()).unwrap();
        }
        _ => {}
    }
    if !token.prefixes.iter().any(|p| api.starts_with(p.as_str())) {
        // Newer Vault wraps ACL denials in a multi-error list.
        return errors_reply(
            403,
            &["1 error occurred:\n\t* permission denied\n\n".into()],
        );
    }
    let Some((mount, rest)) = s
        .engines
        .keys()
        .filter(|m| api.starts_with(&format!("{m}/")))
        .max_by_key(|m| m.len())
        .map(|m| (m.clone(), api[m.len() + 1..].to_owned()))
    else {
        return errors_reply(
            404,
            &[format!(
                "no handler for route \"{api}\". route entry not found."
            )],
        );
    };
    let engine = s.engines.get_mut(&mount).unwrap();
    match engine {
        Engine::KvV1(map) => kv_v1(map, method, &rest),
        Engine::KvV2(map) => kv_v2(map, method, &rest, query),
        Engine::Pki(pki) => pki_issue(pki, method, &rest, &body),
    }
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v1#read-secret
fn kv_v1(map: &BTreeMap<String, Value>, method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET {
        return errors_reply(405, &[]);
    }
    match map.get(path) {
        Some(data) => ok_reply(data.clone(), 2_764_800),
        None => errors_reply(404, &[]),
    }
}

// https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version
fn kv_v2(
    map: &BTreeMap<String, Vec<KvVersion>>,
    method: &Method,
    rest: &str,
    query: &str,
) -> Response<Body> {
    let Some(path) = rest.strip_prefix("data/") else {
        // A KV v1-style path on a versioned mount.
        let body = json!({
            "request_id": random_uuid(), "lease_id": "", "renewable": false, "lease_duration": 0,
            "data": null, "wrap_info": null, "auth": null,
            "warnings": ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."]
        });
        return json_reply(404, &body);
    };
    if method != Method::GET {
        return errors_reply(405, &[]);
    }
    let Some(versions) = map.get(path) else {
        return errors_reply(404, &[]);
    };
    let wanted = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("version="))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(versions.len());
    let Some(version) = versions.get(wanted - 1) else {
        return errors_reply(404, &[]);
    };
    let metadata = json!({
        "created_time": version.created, "custom_metadata": null,
        "deletion_time": version.deleted.clone().unwrap_or_default(),
        "destroyed": version.destroyed, "version": wanted,
    });
    if version.deleted.is_some() || version.destroyed {
        let body = json!({
            "request_id": random_uuid(), "lease_id": "", "renewable": false, "lease_duration": 0,
            "data": {"data": null, "metadata": metadata}, "wrap_info": null, "warnings": null, "auth": null
        });
        return json_reply(404, &body);
    }
    ok_reply(json!({"data": version.data, "metadata": metadata}), 0)
}

// https://developer.hashicorp.com/vault/api-docs/secret/pki#generate-certificate-and-key
fn pki_issue(pki: &Pki, method: &Method, rest: &str, body: &Value) -> Response<Body> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SerialNumber,
    };
    let Some(role_name) = rest.strip_prefix("issue/") else {
        return errors_reply(
            404,
            &[format!(
                "no handler for route \"{rest}\". route entry not found."
            )],
        );
    };
    if method != Method::POST && method != Method::PUT {
        return errors_reply(405, &[]);
    }
    let Some(role) = pki.roles.get(role_name) else {
        return errors_reply(400, &[format!("unknown role: {role_name}")]);
    };
    let Some(cn) = body["common_name"].as_str().filter(|c| !c.is_empty()) else {
        return errors_reply(400, &["the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false".into()]);
    };
    let split = |field: &str| -> Vec<String> {
        body[field]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let dns: Vec<String> = std::iter::once(cn.to_owned())
        .chain(split("alt_names"))
        .collect();
    for name in &dns {
        let allowed = role
            .allowed_domains
            .iter()
            .any(|d| name == d || (role.allow_subdomains && name.ends_with(&format!(".{d}"))));
        if !allowed {
            return errors_reply(
                400,
                &[format!("common name {name} not allowed by this role")],
            );
        }
    }
    let ips = split("ip_sans");
    if !ips.is_empty() && !role.allow_ip_sans {
        return errors_reply(
            400,
            &[
                "IP Subject Alternative Names are not allowed in this role, but was provided"
                    .into(),
            ],
        );
    }
    if ips.iter().any(|ip| ip.parse::<IpAddr>().is_err()) {
        return errors_reply(
            400,
            &["the value of the ip_sans field is not a valid IP address".into()],
        );
    }
    let ttl = body["ttl"]
        .as_str()
        .and_then(parse_ttl)
        .unwrap_or(role.max_ttl)
        .min(role.max_ttl);
    let mut params =
        CertificateParams::new(dns.iter().chain(&ips).cloned().collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(30)).into();
    let not_after = now + ttl;
    params.not_after = not_after.into();
    let mut serial = random_bytes(16);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    let serial_number = serial
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    ok_reply(
        json!({
            "certificate": cert.pem().trim_end(),
            "issuing_ca": pki.ca_pem.trim_end(),
            "ca_chain": [pki.ca_pem.trim_end()],
            "private_key": key.serialize_pem().trim_end(),
            "private_key_type": "ec",
            "serial_number": serial_number,
            "expiration": not_after.duration_since(UNIX_EPOCH).unwrap().as_secs(),
        }),
        0,
    )
}

fn parse_ttl(ttl: &str) -> Option<Duration> {
    let (digits, unit) = ttl.split_at(ttl.find(|c: char| !c.is_ascii_digit()).unwrap_or(ttl.len()));
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn login(s: &mut State, mount: &str, body: &Value) -> Response<Body> {
    let Some(method) = s.auth.get(mount) else {
        return errors_reply(
            400,
            &[format!(
                "no handler for route \"auth/{mount}/login\". route entry not found."
            )],
        );
    };
    let granted: Role = match method {
        // https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
        AuthMethod::AppRole(roles) => {
            let role_id = body["role_id"].as_str().unwrap_or_default();
            if role_id.is_empty() {
                return errors_reply(400, &["missing role_id".into()]);
            }
            let Some((_, secret_id, role)) = roles.get(role_id) else {
                return errors_reply(400, &["invalid role or secret ID".into()]);
            };
            if let Some(expected) = secret_id {
                match body["secret_id"].as_str() {
                    None | Some("") => return errors_reply(400, &["missing secret_id".into()]),
                    Some(given) if given != expected => {
                        return errors_reply(400, &["invalid role or secret ID".into()]);
                    }
                    Some(_) => {}
                }
            }
            role.clone()
        }
        // https://developer.hashicorp.com/vault/api-docs/auth/kubernetes#login
        AuthMethod::Kubernetes(roles) => {
            let name = body["role"].as_str().unwrap_or_default();
            let Some((accounts, namespaces, role)) = roles.get(name) else {
                return errors_reply(400, &[format!("invalid role name \"{name}\"")]);
            };
            let Some(jwt) = body["jwt"].as_str().filter(|j| !j.is_empty()) else {
                return errors_reply(400, &["missing jwt".into()]);
            };
            // A real Vault verifies the JWT with the Kubernetes TokenReview API (its configured
            // reviewer); the double only decodes the claims, which is what the role binding
            // checks look at.
            let Some(claims) = decode_jwt(jwt) else {
                return errors_reply(403, &["permission denied".into()]);
            };
            let (sa, ns) = service_account(&claims);
            if !accounts
                .iter()
                .any(|a| a == "*" || Some(a.as_str()) == sa.as_deref())
            {
                return errors_reply(403, &["service account name not authorized".into()]);
            }
            if !namespaces
                .iter()
                .any(|n| n == "*" || Some(n.as_str()) == ns.as_deref())
            {
                return errors_reply(403, &["namespace not authorized".into()]);
            }
            role.clone()
        }
        // https://developer.hashicorp.com/vault/api-docs/auth/jwt#jwt-login
        AuthMethod::Jwt(roles) => {
            let name = body["role"].as_str().unwrap_or_default();
            let Some((subject, audience, role)) = roles.get(name) else {
                return errors_reply(400, &[format!("role \"{name}\" could not be found")]);
            };
            // Signature verification (JWKS/OIDC discovery) is out of the double's scope.
            let Some(claims) = body["jwt"].as_str().and_then(decode_jwt) else {
                return errors_reply(400, &["error validating token: invalid JWT".into()]);
            };
            if claims["aud"].as_str() != Some(audience.as_str()) {
                return errors_reply(400, &["error validating claims: invalid audience (aud) claim: audience claim does not match any expected audience".into()]);
            }
            if claims["sub"].as_str() != Some(subject.as_str()) {
                return errors_reply(400, &["error validating claims: claim \"sub\" does not match any associated bound claim values".into()]);
            }
            role.clone()
        }
    };
    let client_token = format!("hvs.{}", random_id());
    let accessor = random_id();
    s.tokens.insert(
        client_token.clone(),
        Token {
            policies: granted.policies.clone(),
            prefixes: granted.prefixes.clone(),
            accessor: accessor.clone(),
            ttl: granted.ttl,
            from_login: true,
        },
    );
    let body = json!({
        "request_id": random_uuid(), "lease_id": "", "renewable": false, "lease_duration": 0,
        "data": null, "wrap_info": null, "warnings": null,
        "auth": {
            "client_token": client_token, "accessor": accessor,
            "policies": granted.policies, "token_policies": granted.policies,
            "metadata": {"role": "double"}, "lease_duration": granted.ttl, "renewable": true,
            "entity_id": random_uuid(), "token_type": "service", "orphan": true,
            "mfa_requirement": null, "num_uses": 0
        }
    });
    json_reply(200, &body)
}

/// The service account and namespace of a Kubernetes service-account token: projected tokens
/// carry a `kubernetes.io` claim, legacy ones flat `kubernetes.io/serviceaccount/...` claims.
fn service_account(claims: &Value) -> (Option<String>, Option<String>) {
    let projected = &claims["kubernetes.io"];
    let sa = projected["serviceaccount"]["name"]
        .as_str()
        .or_else(|| claims["kubernetes.io/serviceaccount/service-account.name"].as_str());
    let ns = projected["namespace"]
        .as_str()
        .or_else(|| claims["kubernetes.io/serviceaccount/namespace"].as_str());
    (sa.map(str::to_owned), ns.map(str::to_owned))
}

// https://developer.hashicorp.com/vault/api-docs/system/health
fn health_reply(health: Health) -> Response<Body> {
    let (status, initialized, sealed, standby, perf) = match health {
        Health::Active => (200, true, false, false, false),
        Health::Standby => (429, true, false, true, false),
        Health::PerfStandby => (473, true, false, true, true),
        Health::DrSecondary => (472, true, false, false, false),
        Health::Sealed => (503, true, true, true, false),
        Health::Uninitialized => (501, false, true, true, false),
        Health::Removed => (530, true, false, true, false),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json_reply(
        status,
        &json!({
            "initialized": initialized, "sealed": sealed, "standby": standby,
            "performance_standby": perf, "replication_performance_mode": "disabled",
            "replication_dr_mode": if health == Health::DrSecondary { "secondary" } else { "disabled" },
            "server_time_utc": now, "version": "1.17.2", "enterprise": false,
            "cluster_name": "vault-cluster-double", "cluster_id": "6b7f0b5e-double",
            "removed_from_cluster": health == Health::Removed,
        }),
    )
}

// ---- replies ----------------------------------------------------------------------------------

fn ok_reply(data: Value, lease_duration: u64) -> Response<Body> {
    json_reply(
        200,
        &json!({
            "request_id": random_uuid(), "lease_id": "", "renewable": false,
            "lease_duration": lease_duration, "data": data, "wrap_info": null,
            "warnings": null, "auth": null
        }),
    )
}

/// Vault's error shape: `{"errors": [...]}`.
fn errors_reply(status: u16, errors: &[String]) -> Response<Body> {
    json_reply(status, &json!({ "errors": errors }))
}

fn json_reply(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::from(body.to_string()))
        .unwrap()
}

// ---- small helpers ----------------------------------------------------------------------------

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n.div_ceil(8))
        .flat_map(|_| random_u64().to_le_bytes())
        .take(n)
        .collect()
}

fn random_id() -> String {
    random_bytes(12)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_uuid() -> String {
    let h: String = random_bytes(16)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn now_rfc3339() -> String {
    "2024-04-30T09:00:00.000000Z".to_owned()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (JWT segments).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// A JWT's claims, signature not checked.
fn decode_jwt(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

/// An unsigned-looking JWT carrying `claims` (the double does not check signatures).
pub(crate) fn fake_jwt(claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"RS256","kid":"double"}"#),
        b64url(claims.to_string().as_bytes()),
        b64url(b"not-a-real-signature-but-long-enough")
    )
}

/// A projected Kubernetes service-account token for `namespace`/`name`.
pub(crate) fn service_account_jwt(namespace: &str, name: &str) -> String {
    fake_jwt(&json!({
        "aud": ["https://kubernetes.default.svc"],
        "iss": "https://kubernetes.default.svc",
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "1234"}},
    }))
}
