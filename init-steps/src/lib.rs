//! Ready-made steps for initkit plans, one Cargo feature per family.
