//! The checks of an SQL wait step, written once: "the server answers" (`SELECT 1`) when none is
//! asked for, "this table exists" and "this query returns a row", in order; each driver answers
//! them through [`CheckClient`], and a check that is not met yet is transient.

use std::future::Future;

use init_core::StepError;

/// One check a wait step runs after the login.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    /// The table (or view) exists.
    TableExists(String),
    /// The query returns at least one row.
    QueryReturnsRow(String),
}

/// How one driver's session answers the checks; `what` names the check in errors, which are
/// classified as the driver's own.
pub(crate) trait CheckClient {
    /// Runs `SELECT 1`.
    fn select_one(&mut self, what: &str) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Whether table `table` exists.
    fn table_exists(
        &mut self,
        what: &str,
        table: &str,
    ) -> impl Future<Output = Result<bool, StepError>> + Send;

    /// Whether `sql` returns a row.
    fn returns_row(
        &mut self,
        what: &str,
        sql: &str,
    ) -> impl Future<Output = Result<bool, StepError>> + Send;
}

/// Runs `checks` (or `SELECT 1` when there are none) for the step named `what`.
pub(crate) async fn run_checks(
    what: &str,
    checks: &[Check],
    client: &mut impl CheckClient,
) -> Result<(), StepError> {
    if checks.is_empty() {
        client.select_one(what).await?;
    }
    for check in checks {
        let not_yet = match check {
            Check::TableExists(table) => {
                let found = client
                    .table_exists(&format!("{what}: table {table}"), table)
                    .await?;
                (!found).then(|| format!("table {table} does not exist yet"))
            }
            Check::QueryReturnsRow(sql) => {
                let found = client
                    .returns_row(&format!("{what}: check query"), sql)
                    .await?;
                (!found).then(|| "check query returned no row yet".to_owned())
            }
        };
        if let Some(message) = not_yet {
            return Err(StepError::transient(format!("{what}: {message}")));
        }
    }
    Ok(())
}

/// Validates `checks` of the step named `what`: each table name with the dialect's `table`
/// check, and no empty check query.
pub(crate) fn validate_checks(
    what: &str,
    checks: &[Check],
    table: impl Fn(&str) -> Result<(), StepError>,
) -> Result<(), StepError> {
    for check in checks {
        match check {
            Check::TableExists(name) => table(name)?,
            Check::QueryReturnsRow(sql) if sql.trim().is_empty() => {
                return Err(StepError::invalid(format!(
                    "{what}: empty check query: expected one SQL statement"
                )));
            }
            Check::QueryReturnsRow(_) => {}
        }
    }
    Ok(())
}
