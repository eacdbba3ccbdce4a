//! The report's views of change (`render::report` lays them out): who
//! gains or loses which leads and records, each lead's coverage before and
//! after, why each lead left short is short, and what `apply` would send.
//!
//! Both charts are "before → after" rows, sorted by how much changed, the
//! largest first, at most [`MAX_ROWS`] each: a grey bar for the capacity
//! (an agent's allowance, a lead's demand), a dark tick where the row was
//! before the plan, a coloured tick where it is after, joined by a line.
//! Every row's two ticks carry the `bar before` / `bar after` classes and
//! a tooltip; nothing else has the `bar` class, so marks can be counted.
//! Rows are labelled (agents with their Webex or Zoho name when the
//! snapshot has one).

use super::svg::{Anchor, Area, Canvas, Flow, Linear, Paint, Swatch};
use super::{records, utilisation};
use maud::{html, Markup};
use rebalancer_model::{Action, AgentId, AgentPlan, LeadKey, LeadPlan, Plan, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

/// Most rows of each chart and table.
pub const MAX_ROWS: usize = 40;

/// What the report knows beside the plan: the snapshot it was made from
/// (pools and names; absent for a plan file alone) and the `[apply]`
/// figures that say what applying it sends.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    pub snapshot: Option<&'a Snapshot>,
    pub apply: Option<ApplyRate>,
}

/// `apply.puts_per_second`, `apply.burst`, `apply.max_users_per_put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyRate {
    pub puts_per_second: u32,
    pub burst: u32,
    pub max_users_per_put: usize,
}

/// An agent the plan changes: the leads it gains and loses.
struct AgentMove<'a> {
    plan: &'a AgentPlan,
    gains: Vec<LeadKey>,
    losses: Vec<LeadKey>,
}

impl AgentMove<'_> {
    fn change(&self) -> f64 {
        (self.plan.load_after - self.plan.load_before).abs()
    }
}

/// Agents whose leads or load change, the largest change of load first.
fn agent_moves(plan: &Plan) -> Vec<AgentMove<'_>> {
    let mut by_agent: BTreeMap<&AgentId, (Vec<LeadKey>, Vec<LeadKey>)> = BTreeMap::new();
    for c in &plan.changes {
        let e = by_agent.entry(&c.agent).or_default();
        match c.action {
            Action::Assign => e.0.push(c.lead),
            Action::Unassign => e.1.push(c.lead),
        }
    }
    let mut moves: Vec<AgentMove> = plan
        .agents
        .iter()
        .filter_map(|a| {
            let (gains, losses) = by_agent.remove(&a.agent).unwrap_or_default();
            let moved = (a.load_after - a.load_before).abs() >= 0.5;
            (moved || !gains.is_empty() || !losses.is_empty()).then_some(AgentMove {
                plan: a,
                gains,
                losses,
            })
        })
        .collect();
    moves.sort_by(|x, y| {
        y.change()
            .total_cmp(&x.change())
            .then(x.plan.agent.cmp(&y.plan.agent))
    });
    moves
}

/// Leads whose agents or coverage change, the largest change first.
fn lead_moves(plan: &Plan) -> Vec<&LeadPlan> {
    let changed: BTreeSet<LeadKey> = plan.changes.iter().map(|c| c.lead).collect();
    let mut leads: Vec<&LeadPlan> = plan
        .leads
        .iter()
        .filter(|l| changed.contains(&l.lead) || (l.covered - l.covered_before).abs() >= 0.5)
        .collect();
    leads.sort_by(|a, b| {
        let d = |l: &LeadPlan| (l.covered - l.covered_before).abs();
        d(b).total_cmp(&d(a)).then(a.lead.cmp(&b.lead))
    });
    leads
}

/// How an agent is named: its id, with its Webex display name or email
/// (or Zoho name) when the snapshot has one, else its Webex username when
/// that differs from the id.
fn agent_name(a: &AgentPlan, ctx: &Context) -> String {
    let from_snapshot = ctx.snapshot.and_then(|s| {
        let i = s.agents.binary_search_by(|x| x.id.cmp(&a.agent)).ok()?;
        let agent = &s.agents[i];
        let webex = agent.webex.as_ref();
        webex
            .and_then(|w| w.display_name.clone().or_else(|| w.email.clone()))
            .or_else(|| agent.zoho.as_ref().and_then(|z| z.name.clone()))
    });
    let other = from_snapshot.or_else(|| {
        a.webex_username
            .clone()
            .filter(|u| u.as_str() != a.agent.as_str())
    });
    match other {
        Some(name) => format!("{} · {name}", a.agent),
        None => a.agent.to_string(),
    }
}

/// One row of a before → after chart.
struct Row {
    label: String,
    /// The grey bar: an agent's allowance, a lead's demand.
    capacity: f64,
    before: f64,
    after: f64,
    /// Extra class of the after tick (`short` for a lead left short).
    class: &'static str,
    tip: String,
}

/// The before → after chart of `rows`.
fn rows_chart(
    id: &str,
    label: &str,
    rows: &[Row],
    x_title: &str,
    legend: &[(Swatch, &str)],
) -> Markup {
    const ROW: f64 = 18.0;
    let (width, left, right, top, bottom) = (1100.0, 250.0, 30.0, 44.0, 50.0);
    let height = top + bottom + ROW * rows.len().max(1) as f64;
    let area = Area {
        left,
        top,
        width: width - left - right,
        height: height - top - bottom,
        decimals: 1,
    };
    let max = rows
        .iter()
        .map(|r| r.capacity.max(r.before).max(r.after))
        .fold(1.0_f64, f64::max);
    let step = super::svg::nice_step(max);
    let scale = Linear::to(((max / step).ceil() * step).max(step));
    let x = |v: f64| area.x(scale.fraction(v.max(0.0)));
    let ticks: Vec<(f64, Markup)> = scale
        .ticks(step)
        .map(|v| (x(v), html! { (records(v)) }))
        .collect();
    let body = html! {
        (area.x_grid(Paint::class("grid"), 4.0, &ticks))
        @for (i, r) in rows.iter().enumerate() {
            @let y = top + ROW * i as f64;
            @let mid = y + ROW / 2.0;
            (area.text(Some("row-label"), (left - 8.0, mid + 4.0), Anchor::End, &r.label))
            @if r.capacity > 0.0 {
                (area.rect(Paint::class("capacity"), (x(0.0), y + 4.0), (x(r.capacity) - x(0.0), ROW - 8.0), None))
            }
            (area.line(Paint::class("move"), (x(r.before), mid), (x(r.after), mid)))
            (area.rect(Paint::class("bar before"), (x(r.before) - 1.5, y + 2.0), (3.0, ROW - 4.0), Some(&r.tip)))
            (area.rect(Paint::class(format!("bar after {}", r.class).trim_end()), (x(r.after) - 3.0, y + 2.0), (6.0, ROW - 4.0), Some(&r.tip)))
        }
        (area.line(Paint::class("axis"), (left, top), (left, area.bottom())))
        (area.text(Some("axis-title"), (area.x(0.5), height - 10.0), Anchor::Middle, x_title))
        (area.legend((left, 18.0), Flow::Row, legend))
    };
    Canvas {
        width,
        height,
        id: Some(id),
        class: Some("chart"),
        label: Some(label),
        standalone: false,
    }
    .wrap(body)
}

/// Lead keys as one short list ("501/1000, 501/1009 and 3 more").
fn lead_list(leads: &[LeadKey]) -> String {
    const SHOWN: usize = 4;
    let mut text = leads
        .iter()
        .take(SHOWN)
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if leads.len() > SHOWN {
        text.push_str(&format!(" and {} more", leads.len() - SHOWN));
    }
    text
}

/// "Who moves": each changed agent's leads and records before → after, as
/// a chart and a table.
pub fn agents_section(plan: &Plan, ctx: &Context) -> Markup {
    let moves = agent_moves(plan);
    let shown = &moves[..moves.len().min(MAX_ROWS)];
    let rows: Vec<Row> = shown
        .iter()
        .map(|m| {
            let a = m.plan;
            Row {
                label: agent_name(a, ctx),
                capacity: a.headroom.max(0) as f64,
                before: a.load_before,
                after: a.load_after,
                class: "",
                tip: format!(
                    "{}: records {} → {} of an allowance of {}; leads {} → {}",
                    a.agent,
                    records(a.load_before),
                    records(a.load_after),
                    a.headroom,
                    a.leads_before,
                    a.leads_after
                ),
            }
        })
        .collect();
    html! {
        section {
            h2 { "Who moves" }
            @if moves.is_empty() {
                p { "No agent's leads or load change." }
            } @else {
                p.muted {
                    (moves.len()) " agents gain or lose leads or load, the largest change first"
                    @if moves.len() > shown.len() { " (the first " (shown.len()) " shown)" }
                    ". Records: the load the plan routes to each agent; grey: its allowance (headroom)."
                }
                (rows_chart("agents-chart", "Each changed agent's records before and after the plan", &rows,
                    "records per agent (grey: allowance)",
                    &[(Swatch::Fill("before"), "before the plan"), (Swatch::Fill("after"), "after the plan"), (Swatch::Fill("capacity"), "allowance")]))
                table {
                    thead { tr {
                        th { "agent" } th { "gains" } th { "loses" } th.n { "leads" } th.n { "records" } th.n { "utilisation" }
                    } }
                    tbody {
                        @for m in shown {
                            @let a = m.plan;
                            tr {
                                td.mono { (agent_name(a, ctx)) }
                                td.plus { (lead_list(&m.gains)) }
                                td.minus { (lead_list(&m.losses)) }
                                td.n { (a.leads_before) " → " (a.leads_after) }
                                td.n { (records(a.load_before)) " → " (records(a.load_after)) }
                                td.n {
                                    @if a.headroom > 0 {
                                        (utilisation(a.load_before / a.headroom as f64)) " → " (utilisation(a.load_after / a.headroom as f64))
                                    } @else { span.muted { "no allowance" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each changed lead's coverage before → after, and the leads left short
/// with why.
pub fn leads_section(plan: &Plan) -> Markup {
    let leads = lead_moves(plan);
    let shown = &leads[..leads.len().min(MAX_ROWS)];
    let rows: Vec<Row> = shown
        .iter()
        .map(|l| Row {
            label: l.lead.to_string(),
            capacity: l.demand,
            before: l.covered_before,
            after: l.covered,
            class: if l.shortfall > 0.0 { "short" } else { "" },
            tip: format!(
                "{}: covered {} → {} of a demand of {}",
                l.lead,
                records(l.covered_before),
                records(l.covered),
                records(l.demand)
            ),
        })
        .collect();
    let o = &plan.objectives;
    html! {
        section {
            h2 { "Lead coverage, before → after" }
            p.muted {
                "Leads short of demand: " strong { (o.before.leads_uncovered) " → " (o.after.leads_uncovered) }
                "; records short: " strong { (records(o.before.shortfall)) " → " (records(o.after.shortfall)) } ". "
                @if leads.is_empty() { "No lead's agents or coverage change." }
                @else {
                    (leads.len()) " leads change, the largest change of coverage first"
                    @if leads.len() > shown.len() { " (the first " (shown.len()) " shown)" }
                    "; grey: the lead's demand; red: left short."
                }
            }
            @if !rows.is_empty() {
                (rows_chart("coverage-chart", "Each changed lead's covered records before and after the plan", &rows,
                    "records per lead (grey: demand)",
                    &[(Swatch::Fill("before"), "covered before"), (Swatch::Fill("after"), "covered after"), (Swatch::Fill("after short"), "left short"), (Swatch::Fill("capacity"), "demand")]))
            }
        }
    }
}

/// What the short-lead reasons look up, built once per page: each lead's
/// pool, the plan's agents and the snapshot's, by id.
struct Lookup<'a> {
    pools: BTreeMap<LeadKey, Vec<&'a AgentId>>,
    planned: BTreeMap<&'a AgentId, &'a AgentPlan>,
    agents: BTreeMap<&'a AgentId, &'a rebalancer_model::Agent>,
}

impl<'a> Lookup<'a> {
    fn new(plan: &'a Plan, snap: &'a Snapshot) -> Lookup<'a> {
        let mut pools = BTreeMap::new();
        for c in &snap.campaigns {
            for x in &c.leads {
                let key = LeadKey {
                    campaign_id: c.campaign_id,
                    lead_id: x.lead_id,
                };
                pools.insert(key, x.pool().collect());
            }
        }
        Lookup {
            pools,
            planned: plan.agents.iter().map(|a| (&a.agent, a)).collect(),
            agents: snap.agents.iter().map(|a| (&a.id, a)).collect(),
        }
    }
}

/// Why lead `l` is left short, from its pool and the plan's agents.
fn why_short(l: &LeadPlan, plan: &Plan, look: &Lookup) -> String {
    if l.frozen {
        return "frozen (plan.freeze_leads): the plan does not change it".into();
    }
    let pool: &[&AgentId] = look.pools.get(&l.lead).map_or(&[], Vec::as_slice);
    if pool.is_empty() {
        return "empty pool: the CMS lists no agent who may dial it".into();
    }
    let eligible: Vec<&&AgentPlan> = pool
        .iter()
        .filter_map(|id| look.planned.get(id))
        .filter(|a| a.headroom > 0)
        .collect();
    if eligible.is_empty() {
        let known: Vec<&rebalancer_model::Agent> = pool
            .iter()
            .filter_map(|id| look.agents.get(id).copied())
            .collect();
        let inactive = known.iter().filter(|a| !a.is_active()).count();
        let full = known
            .iter()
            .filter(|a| a.is_active() && a.at_threshold())
            .count();
        let other = pool.len() - inactive - full;
        return format!(
            "no eligible agent: of {} in its pool, {inactive} inactive, {full} at their allowance, {other} with no allowance (unjoined or excluded)",
            pool.len()
        );
    }
    if eligible
        .iter()
        .all(|a| a.load_after + 0.5 >= a.headroom as f64)
    {
        return format!(
            "every eligible agent of its pool ({}) is at its allowance after the plan",
            eligible.len()
        );
    }
    if plan.deferred.iter().any(|d| d.change.lead == l.lead) {
        return "moves that would cover it were deferred (see Deferred changes)".into();
    }
    "its eligible agents' remaining room is held by the plan's limits (plan.max_leads_per_agent, the balance cap)".into()
}

/// Leads left short, the shortest first: why, and Zoho's default assignee.
pub fn short_leads(plan: &Plan, ctx: &Context) -> Markup {
    let mut short: Vec<&LeadPlan> = plan.leads.iter().filter(|l| l.shortfall > 0.0).collect();
    short.sort_by(|a, b| {
        b.shortfall
            .total_cmp(&a.shortfall)
            .then(a.lead.cmp(&b.lead))
    });
    let look = ctx.snapshot.map(|snap| Lookup::new(plan, snap));
    html! {
        section {
            h2 { "Leads left short, and why" }
            @if short.is_empty() {
                p { "Every lead's demand is covered." }
            } @else {
                p.muted {
                    "The default assignee is the Zoho user who receives the records no agent under the threshold can take."
                    @if ctx.snapshot.is_none() { " Made from a plan file alone: the pools, and so the reasons, are not known." }
                }
                table {
                    thead { tr {
                        th { "lead" } th.n { "demand" } th.n { "covered" } th.n { "shortfall" }
                        th { "why" } th { "default assignee" }
                    } }
                    tbody {
                        @for l in &short {
                            tr {
                                td { (l.lead) }
                                td.n { (records(l.demand)) }
                                td.n { (records(l.covered)) }
                                td.n { (records(l.shortfall)) }
                                td {
                                    @match &look {
                                        Some(look) => (why_short(l, plan, look)),
                                        None => span.muted { "—" },
                                    }
                                }
                                td {
                                    @match &l.default_assignee {
                                        Some(a) => span.mono { (a) },
                                        None => span.muted { "none in Zoho" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// PUTs an apply of `plan` sends: per lead with changes, its changes in
/// PUTs of at most `max_users` ids (about: drift, re-checks and keeping a
/// lead staffed may split or skip some).
pub fn puts_needed(plan: &Plan, max_users: usize) -> usize {
    let mut per_lead: BTreeMap<LeadKey, usize> = BTreeMap::new();
    for c in &plan.changes {
        *per_lead.entry(c.lead).or_default() += 1;
    }
    per_lead
        .values()
        .map(|n| n.div_ceil(max_users.max(1)))
        .sum()
}

/// "What apply will send": PUTs, leads and time at the configured rate.
pub fn apply_section(plan: &Plan, ctx: &Context) -> Markup {
    let leads: BTreeSet<LeadKey> = plan.changes.iter().map(|c| c.lead).collect();
    html! {
        section {
            h2 { "What apply will send" }
            @if plan.changes.is_empty() {
                p { "Nothing: the plan has no changes." }
            } @else {
                @match ctx.apply {
                    Some(rate) => {
                        @let puts = puts_needed(plan, rate.max_users_per_put);
                        @let secs = puts.saturating_sub(rate.burst as usize) as f64 / f64::from(rate.puts_per_second.max(1));
                        p {
                            "About " strong { (puts) " PUTs" } " to " (leads.len()) " leads ("
                            (plan.summary.assigns) " assigns, " (plan.summary.unassigns) " unassigns), taking about "
                            strong { (duration(secs)) } " at apply.puts_per_second = " (rate.puts_per_second)
                            " (burst " (rate.burst) "), at most " (rate.max_users_per_put) " agents per PUT (apply.max_users_per_put)."
                        }
                    }
                    None => {
                        p { (plan.changes.len()) " changes to " (leads.len()) " leads; the write rate is the applying config's." }
                    }
                }
            }
        }
    }
}

/// Seconds for people: "under a second", "40 s", "3 min 20 s".
fn duration(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0 => "under a second".into(),
        1..=59 => format!("{s} s"),
        _ if s % 60 == 0 => format!("{} min", s / 60),
        _ => format!("{} min {} s", s / 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0.0), "under a second");
        assert_eq!(duration(39.2), "40 s");
        assert_eq!(duration(120.0), "2 min");
        assert_eq!(duration(200.0), "3 min 20 s");
    }

    #[test]
    fn lead_lists_stay_short() {
        let l = |lead_id| LeadKey {
            campaign_id: 5,
            lead_id,
        };
        assert_eq!(lead_list(&[l(1), l(2)]), "5/1, 5/2");
        assert_eq!(
            lead_list(&[l(1), l(2), l(3), l(4), l(5), l(6)]),
            "5/1, 5/2, 5/3, 5/4 and 2 more"
        );
    }
}
