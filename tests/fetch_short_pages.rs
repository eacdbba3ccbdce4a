//! `cms.short_page_ends` against the in-process sandbox: a lead whose users
//! fit a page costs one CMS GET (counted by the sandbox and by the fetch
//! report), small pages still read everything, and a CMS that caps `limit`
//! silently is read completely with `short_page_ends = false`, while with
//! `true` it is read truncated: the documented trade-off, which nothing in
//! a page lets the client detect.

mod common;

use common::{clients, options, small_world, start, Knobs};
use rebalancer_model::Snapshot;
use rebalancer_sandbox::SandboxConfig;

fn knobs(page_size: u32, short_page_ends: bool) -> Knobs {
    Knobs {
        cms_page_size: page_size,
        cms_short_page_ends: short_page_ends,
        ..Knobs::default()
    }
}

fn same_world(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.campaigns, b.campaigns);
    assert_eq!(a.agents, b.agents);
    assert_eq!(a.problems, b.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_page_ends_reads_each_lead_with_one_get() {
    let cfg = SandboxConfig::default();
    assert!(cfg.cms_max_limit >= 500, "the default world honours limit");
    let sb = start(cfg).await;
    let leads: usize = sb.world().campaigns.iter().map(|c| c.lead_ids.len()).sum();

    let before = sb.counts().cms_get;
    let (short, report) =
        rebalancer_fetcher::fetch(&clients(&sb, &knobs(500, true)), &options(&sb))
            .await
            .unwrap();
    assert_eq!(
        sb.counts().cms_get - before,
        leads as u64,
        "one GET per lead"
    );
    assert_eq!(report.cms_gets, leads as u64);
    assert_eq!(report.cms_gets_per_lead(), Some(1.0));

    let before = sb.counts().cms_get;
    let (full, report) =
        rebalancer_fetcher::fetch(&clients(&sb, &knobs(500, false)), &options(&sb))
            .await
            .unwrap();
    // Every lead with users costs the empty page after them too (a lead
    // with an empty pool is one empty page either way).
    let staffed = full
        .leads()
        .filter(|(_, l)| l.pool().next().is_some())
        .count();
    assert!(staffed > leads / 2, "{staffed} of {leads} leads have users");
    assert_eq!(
        sb.counts().cms_get - before,
        (leads + staffed) as u64,
        "the empty page too"
    );
    assert_eq!(report.cms_gets, (leads + staffed) as u64);
    same_world(&short, &full);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_page_ends_with_small_pages_reads_everything() {
    let sb = start(small_world(5)).await;
    let (short, rs) = rebalancer_fetcher::fetch(&clients(&sb, &knobs(3, true)), &options(&sb))
        .await
        .unwrap();
    let (full, rf) = rebalancer_fetcher::fetch(&clients(&sb, &knobs(3, false)), &options(&sb))
        .await
        .unwrap();
    same_world(&short, &full);
    for (key, lead) in short.leads() {
        let (assigned, unassigned) = sb.mapping(key.campaign_id, key.lead_id).unwrap();
        assert_eq!(lead.assigned.len(), assigned.len(), "lead {key}");
        assert_eq!(lead.unassigned.len(), unassigned.len(), "lead {key}");
    }
    // Pages of 3 really paged, and ending on the short page saved GETs
    // (all but the leads whose longer list is a multiple of 3).
    let leads = rs.leads_read as u64;
    assert!(
        rs.cms_gets > leads,
        "{} GETs for {leads} leads",
        rs.cms_gets
    );
    assert!(
        rs.cms_gets < rf.cms_gets,
        "{} vs {}",
        rs.cms_gets,
        rf.cms_gets
    );
    assert_eq!(rf.cms_gets - rs.cms_gets, {
        // Without short_page_ends every lead costs one GET more, except
        // those whose last page was full, which cost the same.
        short
            .leads()
            .filter(|(_, l)| l.assigned.len().max(l.unassigned.len()) % 3 != 0)
            .count() as u64
    });
    sb.shutdown().await;
}

/// A CMS that caps `limit` (4) below the page size asked (500) without
/// saying so. `short_page_ends = false` is complete; `true` takes each
/// capped page for the last one and reads bigger leads truncated. The
/// client cannot tell: the contract's page has no total count and does not
/// echo the limit applied, so a capped page looks exactly like a last page.
/// Such a CMS needs `cms.page_size` at or below its cap, or
/// `cms.short_page_ends = false` (config/default.toml says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_caps_limit_needs_short_page_ends_off() {
    let sb = start(SandboxConfig {
        cms_max_limit: 4,
        ..small_world(6)
    })
    .await;
    let (full, _) = rebalancer_fetcher::fetch(&clients(&sb, &knobs(500, false)), &options(&sb))
        .await
        .unwrap();
    for (key, lead) in full.leads() {
        let (assigned, unassigned) = sb.mapping(key.campaign_id, key.lead_id).unwrap();
        let got: Vec<String> = lead.assigned.iter().map(|a| a.0.to_string()).collect();
        assert_eq!(got, assigned, "assigned of lead {key}");
        let got: Vec<String> = lead.unassigned.iter().map(|a| a.0.to_string()).collect();
        assert_eq!(got, unassigned, "unassigned of lead {key}");
    }
    // A page size at the cap is honoured again: short pages are safe.
    let (at_cap, _) = rebalancer_fetcher::fetch(&clients(&sb, &knobs(4, true)), &options(&sb))
        .await
        .unwrap();
    same_world(&full, &at_cap);

    // The hazard: with short_page_ends and a page size above the cap, every
    // lead ends after its first (capped) page.
    let (short, report) =
        rebalancer_fetcher::fetch(&clients(&sb, &knobs(500, true)), &options(&sb))
            .await
            .unwrap();
    assert_eq!(report.cms_gets, report.leads_read as u64);
    let truncated = short
        .leads()
        .filter(|(key, lead)| {
            let (assigned, unassigned) = sb.mapping(key.campaign_id, key.lead_id).unwrap();
            lead.assigned.len() + lead.unassigned.len() < assigned.len() + unassigned.len()
        })
        .count();
    assert!(
        truncated > 0,
        "pools of 5 or more are cut at 4 users a list"
    );
    sb.shutdown().await;
}
