//! One module per subcommand.

pub mod fetch;
pub mod plan;
pub mod sandbox;
