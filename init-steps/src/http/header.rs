//! The request headers of an [`HttpWait`]: which are credentials, the header map sent, and the
//! secrets registered with the context's redactor.

use std::fmt;

use init_core::{Context, StepError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::HttpWait;

impl HttpWait {
    pub(super) fn headers(&self) -> Result<HeaderMap, StepError> {
        let mut map = HeaderMap::new();
        for header in &self.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
                StepError::invalid(format!(
                    "{}: header name {:?}: expected a token (letters, digits, -)",
                    self.name, header.name
                ))
            })?;
            let mut value = HeaderValue::from_str(&header.value).map_err(|_| {
                StepError::invalid(format!(
                    "{}: header {:?}: expected a value of visible ASCII characters",
                    self.name, header.name
                ))
            })?;
            value.set_sensitive(header.secret);
            map.append(name, value);
        }
        Ok(map)
    }

    pub(super) fn register_secrets(&self, ctx: &Context, url: &Url) {
        for header in self.headers.iter().filter(|h| h.secret) {
            ctx.register_secret(&header.value);
            // `Bearer <token>`: the token alone is a secret too.
            if let Some((_, credential)) = header.value.split_once(' ') {
                ctx.register_secret(credential.trim());
            }
        }
        if let Some(password) = url.password() {
            ctx.register_secret(password);
        }
    }
}

/// One request header; a secret value is never shown.
pub(super) struct Header {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) secret: bool,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.secret {
            init_core::REDACTED
        } else {
            &self.value
        };
        write!(f, "{}: {value}", self.name)
    }
}

/// Whether a header named `name` carries a credential (by its name).
pub(super) fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "password", "key", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_recognised_by_name() {
        for name in [
            "Authorization",
            "cookie",
            "X-Vault-Token",
            "X-API-Key",
            "X-Client-Secret",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["Accept", "User-Agent", "Host"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }
}
