//! Concurrent groups: [`Group`] (what [`Plan::concurrently`](crate::Plan::concurrently)
//! accepts: a tuple of steps of any types, an array or a `Vec`), [`Member`] (one member of a
//! group) and [`Sequence`] (a member whose steps run in order).

use std::any::Any;
use std::fmt;

use crate::step::Step;

/// A member of a concurrent group: a step, or a [`Sequence`] of steps that run in order.
///
/// Implemented for every [`Step`] (a `Box<dyn Step>` is kept as it is, not boxed again) and for
/// [`Sequence`].
///
/// # Examples
///
/// ```
/// use init_core::{async_trait, Context, Member, Sequence, Step, StepError};
///
/// # #[derive(Debug)] struct Noop(&'static str);
/// # #[async_trait] impl Step for Noop {
/// #     fn name(&self) -> &str { self.0 }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// assert_eq!(Noop("a").into_steps().len(), 1);
/// assert_eq!(Sequence::new().step(Noop("a")).step(Noop("b")).into_steps().len(), 2);
/// ```
pub trait Member {
    /// The member's steps, in the order they run.
    fn into_steps(self) -> Vec<Box<dyn Step>>;
}

impl<S: Step + 'static> Member for S {
    fn into_steps(self) -> Vec<Box<dyn Step>> {
        let mut slot = Some(self);
        let any: &mut dyn Any = &mut slot;
        if let Some(boxed) = any.downcast_mut::<Option<Box<dyn Step>>>() {
            return boxed.take().into_iter().collect();
        }
        slot.map(|step| Box::new(step) as Box<dyn Step>)
            .into_iter()
            .collect()
    }
}

/// A member of a concurrent group whose steps run one after the other, while the group's other
/// members run beside it.
///
/// Each step keeps its own policy and its own line in the report. A failure that aborts ends
/// the sequence (its later steps are reported `skipped`) and cancels the group's other members;
/// a sibling's aborting failure cancels the running step and skips the rest. A step of a
/// sequence may read what the steps before it in the sequence publish, never what a sibling
/// member publishes. Step names stay unique across the whole plan.
///
/// # Examples
///
/// ```
/// use init_core::prelude::*;
/// use init_core::Sequence;
///
/// # #[derive(Debug)] struct Noop(&'static str);
/// # #[async_trait] impl Step for Noop {
/// #     fn name(&self) -> &str { self.0 }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// let plan = Plan::new("orders-init").concurrently((
///     Noop("redis"),
///     Sequence::new().step(Noop("vault-login")).step(Noop("db-credentials")).step(Noop("postgres")),
/// ));
/// assert_eq!(plan.step_names(), ["redis", "vault-login", "db-credentials", "postgres"]);
/// ```
#[derive(Default)]
pub struct Sequence {
    steps: Vec<Box<dyn Step>>,
}

impl Sequence {
    /// An empty sequence (a plan refuses it until it has a step).
    ///
    /// ```
    /// use init_core::Member;
    /// assert!(init_core::Sequence::new().into_steps().is_empty());
    /// ```
    pub fn new() -> Self {
        Self { steps: Vec::new() }
    }

    /// Appends a step that runs after the sequence's steps before it.
    ///
    /// ```
    /// # use init_core::{async_trait, Context, Member, Sequence, Step, StepError};
    /// # #[derive(Debug)] struct Noop;
    /// # #[async_trait] impl Step for Noop {
    /// #     fn name(&self) -> &str { "noop" }
    /// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
    /// # }
    /// assert_eq!(Sequence::new().step(Noop).into_steps()[0].name(), "noop");
    /// ```
    #[must_use]
    pub fn step(mut self, step: impl Step + 'static) -> Self {
        self.steps.extend(step.into_steps());
        self
    }
}

impl Member for Sequence {
    fn into_steps(self) -> Vec<Box<dyn Step>> {
        self.steps
    }
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|s| s.name()).collect();
        f.debug_tuple("Sequence").field(&names).finish()
    }
}

/// What [`Plan::concurrently`](crate::Plan::concurrently) accepts: a tuple of up to 16
/// [members](Member) of any types (no `.boxed()` needed), or an array or `Vec` of one member
/// type (`Box<dyn Step>` for a list built at run time).
///
/// # Examples
///
/// ```
/// use init_core::{async_trait, Context, Group, Step, StepError, StepExt};
///
/// # #[derive(Debug)] struct A;
/// # #[async_trait] impl Step for A {
/// #     fn name(&self) -> &str { "a" }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// # #[derive(Debug)] struct B;
/// # #[async_trait] impl Step for B {
/// #     fn name(&self) -> &str { "b" }
/// #     async fn run(&self, _: &Context) -> Result<(), StepError> { Ok(()) }
/// # }
/// assert_eq!((A, B).into_members().len(), 2);
/// assert_eq!(vec![A.boxed(), B.boxed()].into_members().len(), 2);
/// ```
pub trait Group {
    /// The group's members, each the steps it runs in order.
    fn into_members(self) -> Vec<Vec<Box<dyn Step>>>;
}

impl<M: Member, const N: usize> Group for [M; N] {
    fn into_members(self) -> Vec<Vec<Box<dyn Step>>> {
        self.into_iter().map(Member::into_steps).collect()
    }
}

impl<M: Member> Group for Vec<M> {
    fn into_members(self) -> Vec<Vec<Box<dyn Step>>> {
        self.into_iter().map(Member::into_steps).collect()
    }
}

macro_rules! group_tuples {
    ($($member:ident),+) => {
        impl<$($member: Member),+> Group for ($($member,)+) {
            #[allow(non_snake_case)]
            fn into_members(self) -> Vec<Vec<Box<dyn Step>>> {
                let ($($member,)+) = self;
                vec![$($member.into_steps()),+]
            }
        }
    };
}

group_tuples!(A);
group_tuples!(A, B);
group_tuples!(A, B, C);
group_tuples!(A, B, C, D);
group_tuples!(A, B, C, D, E);
group_tuples!(A, B, C, D, E, F);
group_tuples!(A, B, C, D, E, F, G);
group_tuples!(A, B, C, D, E, F, G, H);
group_tuples!(A, B, C, D, E, F, G, H, I);
group_tuples!(A, B, C, D, E, F, G, H, I, J);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K, L);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
group_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, StepError, StepExt};
    use async_trait::async_trait;

    /// Not zero-sized, so that each box of it has an address of its own.
    #[derive(Debug)]
    struct Noop(#[allow(dead_code)] u64);

    #[async_trait]
    impl Step for Noop {
        fn name(&self) -> &str {
            "noop"
        }

        async fn run(&self, _: &Context) -> Result<(), StepError> {
            Ok(())
        }
    }

    #[test]
    fn a_boxed_step_is_not_boxed_again() {
        let boxed = Noop(7).boxed();
        let address = std::ptr::from_ref::<dyn Step>(boxed.as_ref()).cast::<u8>();
        let steps = boxed.into_steps();
        assert_eq!(
            std::ptr::from_ref::<dyn Step>(steps[0].as_ref()).cast::<u8>(),
            address
        );
    }
}
