//! What an [`HttpWait`] expects of an answer: a set of statuses (`200,204,300-399`, `2xx`),
//! a substring of the body, JSON values at pointers; and the errors for an answer that differs.

use std::fmt;

use init_core::StepError;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::HttpWait;
use crate::support::http_client::{self, Family};

/// How much of an unexpected JSON value an error message shows.
const SHOWN_VALUE_MAX: usize = 80;

impl HttpWait {
    pub(super) fn check_body(&self, what: &str, body: &[u8]) -> Result<(), StepError> {
        if let Some(text) = &self.body_contains
            && !body.windows(text.len()).any(|w| w == text.as_bytes())
        {
            return Err(StepError::transient(format!(
                "{what}: body does not contain {text:?}"
            )));
        }
        if self.json.is_empty() {
            return Ok(());
        }
        let document: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            StepError::transient(format!("{what}: body is not JSON")).with_source(e)
        })?;
        for (pointer, expected) in &self.json {
            match document.pointer(pointer) {
                Some(actual) if actual == expected => {}
                Some(actual) => {
                    return Err(StepError::transient(format!(
                        "{what}: {pointer:?} is {}, expected {}",
                        shown(actual),
                        shown(expected)
                    )));
                }
                None => {
                    return Err(StepError::transient(format!(
                        "{what}: no {pointer:?} in the JSON body, expected {}",
                        shown(expected)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The error for a status outside the expected set: permanent for refused credentials,
/// transient otherwise (honouring `Retry-After`), worded as every family words a status.
pub(super) fn unexpected_status(
    what: &str,
    status: StatusCode,
    expected: &StatusSet,
    headers: &HeaderMap,
) -> StepError {
    let mut context = format!("expected {expected}");
    if status.is_redirection() {
        context.push_str(
            " (redirects are not followed: expect this status, or follow same-origin redirects)",
        );
    }
    let class = http_client::status_class(status, Family::Wait);
    http_client::status_error(what, status, class, Some(&context), headers)
}

/// A JSON value for a message, cut to a readable length.
fn shown(value: &serde_json::Value) -> String {
    crate::support::text::shorten(&value.to_string(), SHOWN_VALUE_MAX).into_owned()
}

/// A set of HTTP statuses: inclusive ranges, and the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatusSet {
    ranges: Vec<(u16, u16)>,
    spec: String,
}

impl Default for StatusSet {
    fn default() -> Self {
        Self {
            ranges: vec![(200, 299)],
            spec: "2xx".to_owned(),
        }
    }
}

impl StatusSet {
    /// Parses `200,204,300-399,4xx`; the error names the part that is wrong.
    pub(super) fn parse(spec: &str) -> Result<Self, String> {
        let expected = "expected status codes (100 to 599), ranges and classes separated by commas, as in 200,204,300-399 or 2xx";
        let code = |text: &str| {
            text.trim().parse::<u16>().ok().filter(|c| {
                (100..=599).contains(c) && text.trim().bytes().all(|b| b.is_ascii_digit())
            })
        };
        let mut ranges = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    match class.parse::<u16>() {
                        Ok(c @ 1..=5) if class.len() == 1 => Some((c * 100, c * 100 + 99)),
                        _ => None,
                    }
                } else if let Some((low, high)) = part.split_once('-') {
                    code(low).zip(code(high)).filter(|(l, h)| l <= h)
                } else {
                    code(part).map(|c| (c, c))
                };
            match range {
                Some(range) => ranges.push(range),
                None => return Err(format!("status {part:?}: {expected}")),
            }
        }
        Ok(Self {
            ranges,
            spec: spec.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        })
    }

    pub(super) fn contains(&self, status: StatusCode) -> bool {
        let code = status.as_u16();
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::Duration;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn status_sets_take_codes_ranges_and_classes() {
        let set = StatusSet::parse("200, 204,300-399,4xx").unwrap();
        for code in [200, 204, 300, 302, 399, 400, 404, 499] {
            assert!(set.contains(status(code)), "{code}");
        }
        for code in [201, 299, 500, 100] {
            assert!(!set.contains(status(code)), "{code}");
        }
        assert_eq!(set.to_string(), "200,204,300-399,4xx");
        assert!(StatusSet::default().contains(status(204)));
        assert!(!StatusSet::default().contains(status(301)));
    }

    #[test]
    fn bad_status_sets_name_the_part_that_is_wrong() {
        for (spec, part) in [
            ("", "\"\""),
            ("200,", "\"\""),
            ("abc", "\"abc\""),
            ("2000", "\"2000\""),
            ("99", "\"99\""),
            ("600", "\"600\""),
            ("399-300", "\"399-300\""),
            ("6xx", "\"6xx\""),
            ("20x", "\"20x\""),
            ("+200", "\"+200\""),
        ] {
            let err = StatusSet::parse(spec).unwrap_err();
            assert!(
                err.starts_with(&format!("status {part}: expected")),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn refused_credentials_are_permanent_other_statuses_transient() {
        let expected = StatusSet::default();
        let mut headers = HeaderMap::new();
        for code in [401, 403, 407] {
            assert!(unexpected_status("u", status(code), &expected, &headers).is_permanent());
        }
        for code in [301, 400, 404, 429, 500, 503] {
            assert!(unexpected_status("u", status(code), &expected, &headers).is_transient());
        }
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let busy = unexpected_status("http://app/", status(503), &expected, &headers);
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            busy.to_string(),
            "http://app/: HTTP 503 Service Unavailable: expected 2xx"
        );
    }

    #[test]
    fn long_json_values_are_cut_in_messages() {
        let long = serde_json::Value::String("é".repeat(100));
        let text = shown(&long);
        assert!(text.ends_with('…'));
        assert!(text.len() <= SHOWN_VALUE_MAX + '…'.len_utf8());
    }
}
