//! Errors from planning: bad names or infeasible rules in the planning
//! config, and solver failures. Each names the agent or lead and the fix.

#[derive(Debug, thiserror::Error)]
pub enum OptimizerError {
    #[error("{key}: agent `{agent}` is not in the snapshot; check the CMS user id (agents are named as in the CMS)")]
    UnknownAgent { key: &'static str, agent: String },
    #[error("{key}: lead {lead} is not in the snapshot; name leads CAMPAIGN/LEAD as fetched (see `rebalancer fetch`)")]
    UnknownLead { key: &'static str, lead: String },
    #[error("{key}: {detail}")]
    BadName { key: &'static str, detail: String },
    #[error("{key}: {detail}; fix the value in the [plan] section or the what-if")]
    BadValue { key: &'static str, detail: String },
    #[error("{key} {problem}; fix it in the [plan] section")]
    OutOfRange { key: String, problem: String },
    #[error(
        "pin {agent}@{lead} cannot hold: {why}; remove the pin from plan.pins or fix its cause"
    )]
    InfeasiblePin {
        agent: String,
        lead: String,
        why: String,
    },
    #[error("the exact flow solver overflowed 64-bit integers on this instance; set plan.solver = \"lp\"")]
    Overflow,
    #[error("agent `{agent}` has a headroom of {headroom} records, above the limit of {limit}: its Zoho threshold counts look broken; check its restrict_to rows in Zoho, or exclude it with plan.exclude_agents")]
    HeadroomOutOfRange {
        agent: String,
        headroom: u64,
        limit: i64,
    },
    #[error("{what} add up to more than {limit} records: the counts look broken; check the snapshot's Zoho thresholds and plan.demand")]
    TotalOutOfRange { what: &'static str, limit: i64 },
    #[error("LP solver: {0}")]
    Lp(#[from] crate::lp::LpError),
    #[error("plan.lp_backend `{0}` is not available in this build; available: {1}")]
    UnknownBackend(String, String),
}
