//! `Stage`: one position in a plan, a single step or a concurrent group of sequences; what
//! the plan builds and the executor runs.

use crate::step::Step;

/// A position in the plan: one step, or a group whose members run at once, each member a
/// sequence of one or more steps that run in order.
pub(crate) enum Stage {
    One(Box<dyn Step>),
    Group(Vec<Vec<Box<dyn Step>>>),
}

impl Stage {
    /// Every step of the stage, in plan order (member by member).
    pub(crate) fn steps(&self) -> impl Iterator<Item = &dyn Step> {
        let (one, members) = match self {
            Stage::One(step) => (Some(step.as_ref()), &[][..]),
            Stage::Group(members) => (None, members.as_slice()),
        };
        one.into_iter()
            .chain(members.iter().flatten().map(|step| step.as_ref()))
    }
}
