//! Test helpers shared by rebalancer's crates and the binary's tests, in
//! one place instead of copies or `#[path]` includes: [`pg`], a throwaway
//! PostgreSQL server; [`sandbox`], a sandbox with client settings that
//! reach it and readers of its world; [`plans`], plans built from a
//! sandbox's world without the optimizer; [`writes`], the write-log checks
//! ("each change once", "never emptied", "rate in every window"). It
//! stays below the applier and the optimizer (model, upstream and sandbox
//! only), so the applier's own tests can use it without a second copy of
//! the applier. A dev-dependency only (`publish = false`); nothing here
//! ships.

pub mod pg;
pub mod plans;
pub mod sandbox;
pub mod writes;
