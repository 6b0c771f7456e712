//! [`HttpWait`] as a [`Step`]: the configuration checks, and one attempt (one request, its
//! status and, when asked, its body).

use init_core::{Context, Policy, Publication, Step, StepError, ValidateContext, async_trait};
use reqwest::Method;

use super::HttpWait;
use super::expect::unexpected_status;
use crate::support::http_client::{self, Family};

#[async_trait]
impl Step for HttpWait {
    fn name(&self) -> &str {
        &self.name
    }

    fn publishes(&self) -> Option<Vec<Publication>> {
        Some(Vec::new())
    }

    fn validate(&self, _cx: &ValidateContext<'_>) -> Result<(), StepError> {
        self.url()?;
        self.expected_status()?;
        self.headers()?;
        self.tls.validate(&self.name)?;
        self.tls.check_files(&self.name)?;
        let has_body_checks = self.body_contains.is_some() || !self.json.is_empty();
        if self.method == Method::HEAD && has_body_checks {
            return Err(StepError::invalid(format!(
                "{}: a HEAD answer has no body: body checks need GET",
                self.name
            )));
        }
        if self.body_contains.as_deref() == Some("") {
            return Err(StepError::invalid(format!(
                "{}: body containing \"\": expected a non-empty string",
                self.name
            )));
        }
        if let Some((pointer, _)) = self
            .json
            .iter()
            .find(|(p, _)| !(p.is_empty() || p.starts_with('/')))
        {
            return Err(StepError::invalid(format!(
                "{}: JSON pointer {pointer:?}: expected \"\" or a path starting with /, as in /status",
                self.name
            )));
        }
        if self.max_size == 0 {
            return Err(StepError::invalid(format!(
                "{}: max_size 0: expected at least one byte",
                self.name
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(StepError::invalid(format!(
                "{}: request timeout 0s: expected a duration greater than zero",
                self.name
            )));
        }
        Ok(())
    }

    fn policy(&self) -> Policy {
        Policy::wait()
    }

    async fn run(&self, ctx: &Context) -> Result<(), StepError> {
        let url = self.url()?;
        let expected = self.expected_status()?;
        let headers = self.headers()?;
        self.register_secrets(ctx, url);
        let what = http_client::display_url(url);
        let client = self.client()?;
        let response = client
            .request(self.method.clone(), url.clone())
            .headers(headers)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| http_client::classify_error(e, Family::Wait, &what))?;
        let status = response.status();
        if !expected.contains(status) {
            return Err(unexpected_status(
                &what,
                status,
                expected,
                response.headers(),
            ));
        }
        if self.body_contains.is_none() && self.json.is_empty() {
            return Ok(());
        }
        let body = http_client::read_capped(response, self.max_size, Family::Wait, &what).await?;
        self.check_body(&what, &body)
    }
}
