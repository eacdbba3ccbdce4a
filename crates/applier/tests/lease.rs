//! The journal lease over a PUT that takes longer than the lease's TTL:
//! each PUT's fence renews the lease, and between fences the renewer
//! keeps it, so another applier still finds it held when the lease taken
//! at the last fence would long have expired, and the run ends as it was
//! asked to (stopped), not with `LeaseLost`. (Losing the lease to another
//! process that takes it once expired is tests/cli_apply.rs's
//! `a_paused_holder_sends_nothing_after_a_takeover_*`: exit 12.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use rebalancer_applier::{apply, ApplyConfig, ApplyError, Progress, RunOutcome};
use rebalancer_sandbox::{FaultSpec, Faults};
use rebalancer_upstream::HttpSettings;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewer_keeps_the_lease_while_a_put_outlasts_it() {
    let sb = sandbox(7, 200, 40).await;
    let ttl = Duration::from_secs(2);
    // Every PUT takes three TTLs; one at a time.
    sb.set_faults(Faults {
        cms_put: FaultSpec {
            latency: 3 * ttl,
            ..FaultSpec::default()
        },
        ..Faults::default()
    });
    let up = upstreams(
        &sb,
        HttpSettings {
            timeout: Duration::from_secs(30),
            ..http(None)
        },
    );
    let plan = rebalance(&sb, 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(dir.path());
    let cfg = ApplyConfig {
        lease_ttl: ttl,
        concurrency: 1,
        ..config()
    };
    let (at, want) = (loc(&journal), expected(&sb));
    let stop = CancellationToken::new();
    let progress = Progress::default();
    let (first, contender) = tokio::join!(
        apply(&at, &plan, &up, &cfg, &want, stop.clone(), &progress),
        async {
            // Conditions, polled: the first PUT has reached the CMS (its
            // fence renewed the lease just before), then more than two
            // TTLs have passed with it still in flight.
            while sb.write_log().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let arrived = Instant::now();
            while arrived.elapsed() < 2 * ttl + ttl / 4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let in_flight = sb.write_log().len() == 1;
            // Stopped before any PUT of its own, should it get the lease.
            let stopped = CancellationToken::new();
            stopped.cancel();
            let result = apply(&at, &plan, &up, &cfg, &want, stopped, &Progress::default()).await;
            stop.cancel();
            (in_flight, result)
        }
    );
    let (in_flight, contender) = contender;
    assert!(
        in_flight,
        "a second PUT went out: the first was not in flight"
    );
    assert!(
        matches!(contender, Err(ApplyError::LeaseHeld { .. })),
        "a lease last fenced two TTLs ago was not held: {contender:?}"
    );
    let first = first.unwrap();
    assert_eq!(first.outcome, RunOutcome::Interrupted, "{first:#?}");
}
