//! Test helpers shared by rebalancer's crates and the binary's tests, in
//! one place instead of `#[path]` includes: [`pg`], a throwaway PostgreSQL
//! server. A dev-dependency only (`publish = false`); nothing here ships.

pub mod pg;
