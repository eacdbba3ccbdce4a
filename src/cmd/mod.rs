//! One module per subcommand.

pub mod apply;
pub mod bench;
pub mod bench_instance;
pub mod check;
pub mod completions;
pub mod console;
pub mod decide;
pub mod fetch;
pub mod history;
pub mod man;
pub mod plan;
pub mod proposals;
pub mod resume;
pub mod rollback;
pub mod run;
pub mod sandbox;
pub mod show;
