//! What Vault's reply to a [`PkiIssue`](super::PkiIssue) holds: the private key, the
//! certificate, the CA chain, the serial number and the expiry, read and checked, and the
//! public value published from it.

use serde_json::{Map, Value};

use init_core::StepError;

use super::client::string_list;

/// The keys of the public value [`PkiIssue::publish`](super::PkiIssue::publish) publishes (the private key is published
/// on its own, as `<name>_key`).
pub(super) const PUBLISHED_KEYS: [&str; 5] = [
    "certificate",
    "issuing_ca",
    "ca_chain",
    "serial_number",
    "expiration",
];

/// The public parts of an issued certificate (the key is read on its own, first, so that it is
/// registered as a secret before anything else happens).
#[derive(Debug)]
pub(super) struct Issued<'a> {
    pub(super) certificate: &'a str,
    issuing_ca: &'a str,
    ca_chain: Vec<&'a str>,
    /// The CA chain as one PEM text (`ca_chain`, or `issuing_ca` when the chain is empty).
    pub(super) chain: String,
    pub(super) serial: &'a str,
    pub(super) expiration: Option<i64>,
}

impl<'a> Issued<'a> {
    /// Reads the reply's `data`; `subject` names the role in messages.
    pub(super) fn parse(data: &'a Value, subject: &str) -> Result<Self, StepError> {
        let certificate = string_field(data, "certificate", subject)?;
        let issuing_ca = data["issuing_ca"].as_str().unwrap_or_default();
        let ca_chain = string_list(&data["ca_chain"]);
        let chain = if ca_chain.is_empty() {
            issuing_ca.to_owned()
        } else {
            ca_chain
                .iter()
                .map(|c| c.trim_end())
                .collect::<Vec<_>>()
                .join("\n")
        };
        Ok(Self {
            certificate,
            issuing_ca,
            ca_chain,
            chain,
            serial: data["serial_number"].as_str().unwrap_or_default(),
            expiration: data["expiration"].as_i64(),
        })
    }

    /// The value published under the step's name, with the keys of [`PUBLISHED_KEYS`].
    pub(super) fn public(&self) -> Value {
        // In the order of `PUBLISHED_KEYS`, which the step declares it publishes.
        let values: [Value; 5] = [
            self.certificate.into(),
            self.issuing_ca.into(),
            self.ca_chain.clone().into(),
            self.serial.into(),
            self.expiration.into(),
        ];
        let public: Map<String, Value> = PUBLISHED_KEYS
            .iter()
            .map(|key| (*key).to_owned())
            .zip(values)
            .collect();
        Value::Object(public)
    }
}

/// `1735689600` → `2025-01-01T00:00:00Z` (proleptic Gregorian, UTC).
pub(super) fn rfc3339(unix: i64) -> String {
    let (year, month, day, hour, minute, second) =
        crate::support::civil_date::civil_from_unix(unix);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `to - from` in seconds, saturating: Vault's `expiration` is any number a reply holds.
pub(super) fn seconds_between(from: i64, to: i64) -> i64 {
    to.saturating_sub(from)
}

pub(super) fn string_field<'a>(
    data: &'a Value,
    field: &str,
    subject: &str,
) -> Result<&'a str, StepError> {
    data[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            StepError::permanent(format!("{subject}: vault's reply has no data.{field}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn any_expiration_in_a_reply_formats_and_subtracts_without_overflow() {
        for expiration in [i64::MIN, -1, i64::MAX] {
            assert!(!rfc3339(expiration).is_empty());
        }
        assert_eq!(seconds_between(1_000, i64::MIN), i64::MIN);
        assert_eq!(seconds_between(-1_000, i64::MAX), i64::MAX);
        assert_eq!(seconds_between(1_000, 4_600), 3_600);
    }
}
