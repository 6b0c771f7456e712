//! `ExecEnv`: the environment [`run_main_then_exec`](crate::Plan::run_main_then_exec) gives the
//! program it execs: published values exported as variables (what vault-env does), `VAULT_*`
//! stripped unless kept.

use std::collections::BTreeSet;

#[cfg(feature = "run-main")]
use crate::context::Context;
use crate::dataflow::Reference;
use crate::value_path::ValuePath;

/// What [`Plan::exec_env`](crate::Plan::exec_env) and
/// [`Plan::exec_keep_vault_env`](crate::Plan::exec_keep_vault_env) configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecEnv {
    /// Variable name and the published value it gets, in the order given.
    vars: Vec<(String, ValuePath)>,
    keep_vault: bool,
}

impl ExecEnv {
    pub(crate) fn export(&mut self, name: String, path: ValuePath) {
        self.vars.push((name, path));
    }

    pub(crate) fn keep_vault(&mut self) {
        self.keep_vault = true;
    }

    /// The names of the exported variables (never their values).
    pub(crate) fn names(&self) -> Vec<&str> {
        self.vars.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The published values the exec'd program gets, as references the plan's data-flow check
    /// resolves against everything the plan publishes.
    pub(crate) fn reads(&self) -> Vec<Reference> {
        self.vars
            .iter()
            .filter(|(_, path)| path.check().is_ok())
            .map(|(name, path)| path.reference(format!("exec environment variable {name}")))
            .collect()
    }

    /// What is wrong with the configuration, one line per problem, each naming the variable.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, path) in &self.vars {
            if name.is_empty() || name.contains(['=', '\0']) {
                problems.push(format!(
                    "exec environment variable {name:?}: expected a name without '=' or NUL"
                ));
            } else if !seen.insert(name.as_str()) {
                problems.push(format!(
                    "exec environment variable {name}: exported twice; expected one value per name"
                ));
            }
            if let Err(err) = path.check() {
                problems.push(format!("exec environment variable {name}: {err}"));
            }
        }
        problems
    }

    /// Sets up `cmd`'s environment: the process's, less every `VAULT_*` variable unless kept,
    /// plus the exported values read from `ctx` (an exported `VAULT_*` name is set all the same).
    ///
    /// # Errors
    ///
    /// A message naming the variable (never its value) when nothing is published at its path
    /// or the value holds a NUL byte.
    #[cfg(feature = "run-main")]
    pub(crate) fn apply(
        &self,
        ctx: &Context,
        cmd: &mut std::process::Command,
    ) -> Result<(), String> {
        if !self.keep_vault {
            for (name, _) in std::env::vars_os() {
                if name.as_encoded_bytes().starts_with(b"VAULT_") {
                    cmd.env_remove(name);
                }
            }
        }
        for (name, path) in &self.vars {
            let value = path
                .text(ctx)
                .map_err(|e| format!("exec environment variable {name}: {e}"))?;
            if value.contains('\0') {
                return Err(format!(
                    "exec environment variable {name}: values.{path} holds a NUL byte"
                ));
            }
            cmd.env(name, value);
        }
        Ok(())
    }
}
