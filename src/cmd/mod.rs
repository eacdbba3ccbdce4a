//! One module per subcommand.

pub mod bench;
pub mod fetch;
pub mod plan;
pub mod sandbox;
