//! The plan check behind [`Plan::validate`](crate::Plan::validate): names, policies, each
//! step's own configuration, the deadline, the exec environment, and the data flow (every read
//! satisfied by an earlier publication or the environment).

use std::collections::HashSet;
use std::time::Duration;

use crate::context::Context;
use crate::dataflow::{Available, Publication, Reader, Reference};
use crate::duration::{EXPECTED, MAX_DURATION};
use crate::exec_env::ExecEnv;
use crate::secret_env::SecretEnv;
use crate::stage::Stage;
use crate::step::Step;
use crate::validate::ValidateContext;

/// What the check needs of a plan.
pub(crate) struct Parts<'a> {
    pub(crate) stages: &'a [Stage],
    pub(crate) deadline: Option<Duration>,
    pub(crate) has_state_dir: bool,
    pub(crate) secret_env: &'a SecretEnv,
    pub(crate) exec_env: &'a ExecEnv,
}

/// Every problem of the plan, one line each, naming the step; empty when it is valid.
pub(crate) fn problems(parts: &Parts<'_>, ctx: &Context) -> Vec<String> {
    let mut check = Checker {
        cx: ValidateContext::new(ctx),
        env: None,
        seen: HashSet::new(),
        problems: parts.secret_env.problems(),
        has_state_dir: parts.has_state_dir,
        index: 0,
    };
    check.problems.extend(parts.exec_env.problems());
    match parts.deadline {
        Some(Duration::ZERO) => {
            check
                .problems
                .push("deadline = 0s: expected a duration greater than zero".to_owned());
        }
        Some(d) if d > MAX_DURATION => {
            check
                .problems
                .push(format!("deadline = {d:?}: expected {EXPECTED}"));
        }
        _ => {}
    }
    // Values the caller published in `ctx` before the plan count as published before it.
    let mut available = Available::default();
    let published = ctx.published();
    if !published.values().is_empty() {
        available.add(Some(
            published
                .values()
                .iter()
                .map(|(name, value)| match value {
                    serde_json::Value::Object(map) => {
                        Publication::new(name.as_str()).with_keys(map.keys().cloned())
                    }
                    _ => Publication::new(name.as_str()),
                })
                .collect(),
        ));
    }
    for stage in parts.stages {
        match stage {
            Stage::One(step) => check.step(step.as_ref(), &mut available),
            Stage::Group(members) => {
                if members.is_empty() {
                    check
                        .problems
                        .push("a concurrent group has no steps".to_owned());
                }
                // Each member sees what came before the group and what its own sequence
                // published, never a sibling's; after the group, everything is there.
                let before = available.clone();
                for member in members {
                    if member.is_empty() {
                        check
                            .problems
                            .push("a sequence in a concurrent group has no steps".to_owned());
                    }
                    let mut own = before.clone();
                    for step in member {
                        check.step(step.as_ref(), &mut own);
                    }
                    available.merge(own);
                }
            }
        }
    }
    // The program runs after the whole plan, not after one step.
    let exec_reads = parts.exec_env.reads();
    check.reads(&exec_reads, &available, Reader::Program, "");
    check.problems
}

/// The state of [`Plan::validate`] as it walks the plan.
struct Checker<'a> {
    cx: ValidateContext<'a>,
    /// The environment, read once, when a step first reads a variable.
    env: Option<std::collections::BTreeMap<String, String>>,
    seen: HashSet<&'a str>,
    problems: Vec<String>,
    has_state_dir: bool,
    /// The plan-order index of the next step, so a panic in its `validate` names it.
    index: usize,
}

impl<'a> Checker<'a> {
    /// Checks `step` (name, configuration, policy, reads against `available`), then adds what
    /// it publishes to `available`.
    fn step(&mut self, step: &'a dyn Step, available: &mut Available) {
        // A panic in the step's own code names it (see `run_main`).
        let _in_step = crate::panic::InStep::enter(self.index);
        self.index += 1;
        let name = step.name();
        if name.trim().is_empty() {
            self.problems.push("a step has an empty name".to_owned());
        } else if !self.seen.insert(name) {
            self.problems
                .push(format!("duplicate step name \"{name}\""));
            return;
        }
        if let Err(err) = step.validate(&self.cx) {
            self.problems.push(format!("step \"{name}\": {err}"));
        }
        let policy = step.policy();
        if let Err(err) = policy.validate() {
            self.problems.push(format!("step \"{name}\": {err}"));
        }
        if policy.once() && !self.has_state_dir {
            self.problems.push(format!(
                "step \"{name}\" is `once` but the plan has no state directory \
                 (Plan::with_state_dir)"
            ));
        }
        self.reads(
            &step.reads(),
            available,
            Reader::Step,
            &format!("step \"{name}\": "),
        );
        available.add(step.publishes());
    }

    /// Checks `reads` against `available` and the environment (read once, at the first read),
    /// each problem after `prefix`.
    fn reads(&mut self, reads: &[Reference], available: &Available, reader: Reader, prefix: &str) {
        if reads.is_empty() {
            return;
        }
        let env = self.env.get_or_insert_with(|| self.cx.env_vars());
        for reference in reads {
            if let Some(problem) = available.check(reference, env, reader) {
                self.problems.push(format!("{prefix}{problem}"));
            }
        }
    }
}
