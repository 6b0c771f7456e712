//! [`ApiPath`]: a path of Vault's HTTP API as segments with a query, and the check of a mount
//! or path a user gives.

use std::fmt;

use init_core::StepError;
use url::Url;

/// A path of Vault's HTTP API below `/v1/`, as segments, with an optional query.
#[derive(Debug, Clone)]
pub(crate) struct ApiPath {
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

impl ApiPath {
    /// Joins slash-separated parts (`"secret"`, `"data"`, `"orders/db"`); empty segments are
    /// dropped.
    pub(crate) fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let segments = parts
            .into_iter()
            .flat_map(|p| p.split('/'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            segments,
            query: Vec::new(),
        }
    }

    pub(crate) fn with_query(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    /// The URL of this path on the Vault at `address`: below `address`'s own path (a proxy
    /// prefix is kept), then `v1`, each segment percent-encoded.
    pub(super) fn below(&self, address: &Url) -> Url {
        let mut url = address.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1").extend(&self.segments);
        }
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        url
    }
}

impl fmt::Display for ApiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))?;
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Checks a mount or path given by a user: not empty, no `.` or `..` segments.
pub(crate) fn validate_path(value: &str, what: &str, allow_empty: bool) -> Result<(), StepError> {
    let segments: Vec<&str> = value.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() && !allow_empty {
        return Err(StepError::invalid(format!(
            "{what} \"{value}\": expected a non-empty path"
        )));
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(StepError::invalid(format!(
            "{what} \"{value}\": expected a path without \".\" or \"..\" segments"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '?' || c == '#')
    {
        return Err(StepError::invalid(format!(
            "{what} \"{}\": expected a path without control characters, '?' or '#'",
            value.escape_default()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_dot_segments_are_refused() {
        assert!(validate_path("orders/../sys", "path", false).is_err());
        assert!(validate_path("", "path", false).is_err());
        assert!(validate_path("orders/db", "path", false).is_ok());
    }
}
