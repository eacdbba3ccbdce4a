//! `rebalancer check --config FILE`: is every component reachable and are
//! the credentials good, before a fetch or an apply finds out?
//!
//! One cheap authenticated read per upstream, and the journal, all four
//! at once, each under the configured `[http]` timeouts and without
//! retries (a check reports what it sees now: a refused port is reported
//! at once, not after `http.max_retries` backoffs):
//!
//! - CMS: one GET lead-user of the first configured lead, `limit=1`;
//! - Webex: the users list (the contract's `?username=` filter needs a user
//!   name the config does not have);
//! - Zoho: a token from the refresh token, then page 1 of restrict_to of the
//!   first threshold id (a refresh token without the assignment-threshold
//!   scope fails here with OAUTH_SCOPE_MISMATCH);
//! - journal (`apply.journal`, or `--journal`): its directory takes a new
//!   file, and an existing journal opens (`rebalancer_applier::history`).
//!
//! Each failure names its fix (the typed errors carry one). The table or
//! JSON goes to stdout; when anything failed the command ends with
//! [`CheckFailed`] (exit 14). Nothing printed holds a secret: targets are
//! base URLs and ids, results and fixes come from errors that never quote
//! one.

use crate::exit::CheckFailed;
use crate::render::{self, check::CheckRow, Format};
use rebalancer_applier::{ApplyError, JournalLocation};
use rebalancer_ops::settings::{self, Endpoints, Env, HttpKeys};
use rebalancer_upstream::{CmsClient, Stats, UpstreamError, WebexClient, ZohoClient};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `check` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub config: PathBuf,
    /// Overrides `apply.journal`.
    pub journal: Option<PathBuf>,
    pub format: Format,
}

/// What one check saw: `Ok(result)` or `Err((result, fix))`.
type Outcome = Result<String, (String, String)>;

pub async fn run(opts: Options) -> anyhow::Result<u8> {
    let loaded = settings::load(&opts.config, &Env::from_process())?;
    let (s, local) = loaded.value.split();
    let journal = local.journal.location(&local.apply, opts.journal);
    let http = &HttpKeys {
        max_retries: 0,
        ..local.http.clone()
    };
    let (cms, webex, zoho, journal) = tokio::join!(
        timed("cms", cms_target(&s), check_cms(&s, http)),
        timed("webex", s.webex.base_url.to_string(), check_webex(&s, http)),
        timed("zoho", zoho_target(&s), check_zoho(&s, http)),
        timed("journal", journal.to_string(), async {
            let path = journal.clone();
            tokio::task::spawn_blocking(move || match path {
                JournalLocation::Sqlite(path) => check_journal(&path),
                pg => check_pg_journal(&pg),
            })
            .await
            .unwrap_or_else(|e| Err((format!("the check panicked: {e}"), bug())))
        }),
    );
    let rows = [cms, webex, zoho, journal];
    let text = match opts.format {
        Format::Table => render::check::table_of(&rows),
        Format::Json => render::check::json_of(&rows),
    };
    render::emit(&text)?;
    let failed: Vec<&str> = rows.iter().filter(|r| !r.ok).map(|r| r.component).collect();
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CheckFailed {
            failed: failed.into_iter().map(str::to_owned).collect(),
        }
        .into())
    }
}

/// Runs one check and makes its row.
async fn timed(
    component: &'static str,
    target: String,
    check: impl Future<Output = Outcome>,
) -> CheckRow {
    let started = Instant::now();
    let outcome = check.await;
    let time_ms = started.elapsed().as_millis() as u64;
    tracing::info!(component, ok = outcome.is_ok(), time_ms, "check done");
    let (ok, result, fix) = match outcome {
        Ok(result) => (true, result, None),
        Err((result, fix)) => (false, result, Some(fix)),
    };
    CheckRow {
        component,
        target,
        ok,
        result,
        time_ms,
        fix,
    }
}

fn bug() -> String {
    "this is a bug in rebalancer; please report it".into()
}

/// An upstream error as (result, fix): its message and the fix it names.
fn failure(e: UpstreamError) -> (String, String) {
    split_fix(&e.to_string())
}

/// "what happened; fix: what to do" → (what happened, what to do).
fn split_fix(text: &str) -> (String, String) {
    match text.split_once("; fix: ") {
        Some((what, fix)) => (format!("FAILED: {what}"), fix.to_owned()),
        None => (format!("FAILED: {text}"), "see the message".into()),
    }
}

fn first_lead(s: &Endpoints) -> Option<(u64, u64, u64)> {
    s.cms.campaigns.iter().find_map(|c| {
        c.lead_ids
            .first()
            .map(|&l| (c.process_id, c.campaign_id, l))
    })
}

fn cms_target(s: &Endpoints) -> String {
    match first_lead(s) {
        Some((_, campaign, lead)) => format!("{} lead {campaign}/{lead}", s.cms.base_url),
        None => s.cms.base_url.to_string(),
    }
}

fn zoho_target(s: &Endpoints) -> String {
    match s.zoho.threshold_ids.first() {
        Some(id) => format!("{} threshold {id}", s.zoho.api_domain),
        None => s.zoho.api_domain.to_string(),
    }
}

/// One GET lead-user of the first configured lead, `limit=1`.
async fn check_cms(s: &Endpoints, http: &HttpKeys) -> Outcome {
    let Some((process, campaign, lead)) = first_lead(s) else {
        return Err((
            "FAILED: no lead configured".into(),
            "list lead ids under [[cms.campaigns]]".into(),
        ));
    };
    let cms = CmsClient::new(s.cms_config(http), Stats::default()).map_err(failure)?;
    let page = cms
        .lead_users_page(process, campaign, lead, 1, 0)
        .await
        .map_err(failure)?;
    Ok(format!(
        "ok: lead-user read ({} assigned, {} unassigned with limit 1)",
        page.assigned_user_ids.len(),
        page.unassigned_user_ids.len()
    ))
}

/// The Webex users list; an empty one is a failure, as for a fetch.
async fn check_webex(s: &Endpoints, http: &HttpKeys) -> Outcome {
    let webex = WebexClient::new(s.webex_config(http), Stats::default()).map_err(failure)?;
    let users = webex.users().await.map_err(failure)?;
    if users.is_empty() {
        return Err((
            "FAILED: the API key was accepted but Webex Campaign listed no users".into(),
            "check that webex.base_url is your tenant's API domain and webex.api_key a key of \
             that tenant"
                .into(),
        ));
    }
    let active = users.iter().filter(|u| u.is_active()).count();
    Ok(format!("ok: {} users ({active} active)", users.len()))
}

/// A token, then page 1 of the first threshold's restrict_to.
async fn check_zoho(s: &Endpoints, http: &HttpKeys) -> Outcome {
    let Some(threshold) = s.zoho.threshold_ids.first() else {
        return Err((
            "FAILED: no threshold configured".into(),
            "set zoho.threshold_ids".into(),
        ));
    };
    let zoho = ZohoClient::new(s.zoho_config(http), Stats::default()).map_err(failure)?;
    let (users, more) = zoho
        .threshold_users_page(threshold, 1)
        .await
        .map_err(failure)?;
    Ok(format!(
        "ok: token granted; {} users on page 1{}",
        users.len(),
        if more { " (more follow)" } else { "" }
    ))
}

/// A PostgreSQL journal opens (connects, migrates) and reads.
fn check_pg_journal(location: &JournalLocation) -> Outcome {
    match rebalancer_applier::history(location, 1) {
        Ok(runs) => Ok(match runs.first() {
            Some(r) => format!("ok: opens; last run {} ({})", r.id, r.outcome),
            None => "ok: opens; no runs yet".into(),
        }),
        Err(ApplyError::JournalNeedsMigration { found, current, .. }) => Ok(format!(
            "ok: opens; at schema version {found}, the next apply migrates it to {current}"
        )),
        Err(e) => Err((
            format!("FAILED: {e}"),
            "check journal.url: the PostgreSQL server must be reachable from this host, the \
             database must exist, and its user must be allowed to create tables in it"
                .into(),
        )),
    }
}

/// The journal's directory takes a new file; an existing journal opens.
fn check_journal(path: &Path) -> Outcome {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let probe = tempfile::Builder::new()
        .prefix(".rebalancer-check-")
        .tempfile_in(dir);
    if let Err(e) = probe {
        return Err((
            format!("FAILED: cannot create a file in {}: {e}", dir.display()),
            format!(
                "create {} and make it writable for this user, or set apply.journal (or \
                 --journal) to a file in a writable directory",
                dir.display()
            ),
        ));
    }
    if !path.exists() {
        return Ok("ok: directory writable; the first apply creates the journal".into());
    }
    match rebalancer_applier::history(&path.into(), 1) {
        Ok(runs) => Ok(match runs.first() {
            Some(r) => format!("ok: opens; last run {} ({})", r.id, r.outcome),
            None => "ok: opens; no runs yet".into(),
        }),
        Err(ApplyError::JournalNeedsMigration { found, current, .. }) => Ok(format!(
            "ok: opens; at schema version {found}, the next apply migrates it to {current}"
        )),
        Err(e) => Err((
            format!("FAILED: {e}"),
            "point apply.journal (or --journal) at a rebalancer journal, or move this file \
             away so the next apply starts a new one"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fix_is_split_from_its_message() {
        let (what, fix) = split_fix("CMS GET /x: authentication failed; fix: check cms.password");
        assert_eq!(what, "FAILED: CMS GET /x: authentication failed");
        assert_eq!(fix, "check cms.password");
        assert_eq!(split_fix("odd").1, "see the message");
    }

    #[test]
    fn a_journal_in_a_missing_directory_fails_and_an_existing_one_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (result, fix) = check_journal(&dir.path().join("nope/j.sqlite")).unwrap_err();
        assert!(result.starts_with("FAILED: cannot create"), "{result}");
        assert!(fix.contains("apply.journal"), "{fix}");
        let path = dir.path().join("j.sqlite");
        assert!(check_journal(&path).unwrap().contains("first apply"));
        std::fs::write(&path, "not a database, not at all, no").unwrap();
        let (result, _) = check_journal(&path).unwrap_err();
        assert!(result.starts_with("FAILED"), "{result}");
    }
}
