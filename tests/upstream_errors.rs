//! Each documented upstream failure, provoked for real against the sandbox,
//! arrives as its typed error and class, with a message that names the
//! place and fix.

mod common;

use common::{
    clients_from, cms_config, options, small_world, start, webex_config, zoho_config, Knobs,
};
use rebalancer_fetcher::FetchError;
use rebalancer_sandbox::{FaultSpec, Faults, Sandbox};
use rebalancer_upstream::{ErrorClass, UpstreamError};

async fn fetch_err(
    sb: &Sandbox,
    edit: impl FnOnce(
        &mut common::Knobs,
        &mut rebalancer_upstream::CmsConfig,
        &mut rebalancer_upstream::WebexConfig,
        &mut rebalancer_upstream::ZohoConfig,
    ),
) -> FetchError {
    let mut knobs = Knobs::default();
    knobs.http.max_retries = 1;
    let (mut c, mut w, mut z) = (
        cms_config(sb, &knobs),
        webex_config(sb, &knobs),
        zoho_config(sb, &knobs),
    );
    edit(&mut knobs, &mut c, &mut w, &mut z);
    rebalancer_fetcher::fetch(&clients_from(c, w, z), &options(sb))
        .await
        .expect_err("the fetch must fail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_unauthorized_per_api() {
    let sb = start(small_world(11)).await;
    let e = fetch_err(&sb, |_, c, _, _| c.password = "nope".to_string().into()).await;
    assert!(
        matches!(e.upstream(), Some(UpstreamError::Unauthorized { .. })),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    let e = fetch_err(&sb, |_, _, w, _| w.api_key = "nope".to_string().into()).await;
    assert!(
        matches!(e, FetchError::Webex(UpstreamError::Unauthorized { .. })),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    let e = fetch_err(&sb, |_, _, _, z| {
        z.refresh_token = "nope".to_string().into()
    })
    .await;
    assert!(
        matches!(
            e,
            FetchError::Zoho {
                source: UpstreamError::ZohoAuth { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webex_failure_codes_are_typed() {
    let sb = start(small_world(12)).await;
    sb.set_faults(Faults {
        webex: FaultSpec {
            fail_first: 100,
            fail_status: 200,
            ..Default::default()
        },
        ..Default::default()
    });
    let e = fetch_err(&sb, |_, _, _, _| {}).await;
    match &e {
        FetchError::Webex(UpstreamError::WebexFailure { code, .. }) => assert_eq!(code, "1010"),
        other => panic!("expected WebexFailure 1010, got {other}"),
    }
    assert_eq!(e.class(), ErrorClass::Unavailable);
    sb.set_faults(Faults {
        webex: FaultSpec {
            fail_first: 100,
            fail_status: 498,
            ..Default::default()
        },
        ..Default::default()
    });
    let e = fetch_err(&sb, |_, _, _, _| {}).await;
    assert!(
        matches!(e, FetchError::Webex(UpstreamError::TokenExpired { .. })),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Auth);
    sb.set_faults(Faults {
        webex: FaultSpec {
            fail_first: 100,
            fail_status: 429,
            retry_after_secs: 0,
            ..Default::default()
        },
        ..Default::default()
    });
    let e = fetch_err(&sb, |_, _, _, _| {}).await;
    assert!(
        matches!(e, FetchError::Webex(UpstreamError::Throttled { .. })),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Unavailable);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_errors_are_typed_with_their_code() {
    let sb = start(small_world(13)).await;
    for (edit, want) in [
        (
            Box::new(|z: &mut rebalancer_upstream::ZohoConfig| z.module = "Potatoes".into())
                as Box<dyn Fn(&mut _)>,
            "INVALID_MODULE",
        ),
        (
            Box::new(|z: &mut rebalancer_upstream::ZohoConfig| z.api_version = "v2".into()),
            "API_NOT_SUPPORTED",
        ),
    ] {
        let e = fetch_err(&sb, |_, _, _, z| edit(z)).await;
        match &e {
            FetchError::Zoho {
                source: UpstreamError::Zoho { code, .. },
                ..
            } => assert_eq!(code, want),
            other => panic!("expected Zoho {want}, got {other}"),
        }
        assert_eq!(e.class(), ErrorClass::Data);
    }
    let mut opts = options(&sb);
    opts.threshold_ids.push("123".into());
    let e = rebalancer_fetcher::fetch(&common::clients(&sb, &Knobs::default()), &opts)
        .await
        .unwrap_err();
    match &e {
        FetchError::Zoho {
            threshold_id,
            source: UpstreamError::Zoho { code, .. },
        } => {
            assert_eq!(threshold_id, "123");
            assert_eq!(code, "INVALID_DATA");
        }
        other => panic!("expected INVALID_DATA, got {other}"),
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_body_names_the_endpoint_and_shows_bytes() {
    let sb = start(small_world(14)).await;
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            p_malformed: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let e = fetch_err(&sb, |_, _, _, _| {}).await;
    match e.upstream() {
        Some(UpstreamError::Malformed {
            endpoint,
            body_prefix,
            ..
        }) => {
            assert!(endpoint.contains("lead-user"), "{endpoint}");
            assert!(!body_prefix.is_empty());
        }
        _ => panic!("expected Malformed, got {e}"),
    }
    assert_eq!(e.class(), ErrorClass::Data);
    let msg = e.to_string();
    assert!(msg.contains("lead"), "{msg}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_gives_up_with_server_error() {
    let sb = start(small_world(15)).await;
    sb.set_faults(Faults {
        cms_get: FaultSpec {
            p_500: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    // One lead at a time, so the requests of the failing lead can be counted.
    let mut knobs = Knobs::default();
    knobs.http.max_retries = 2;
    let mut opts = options(&sb);
    opts.concurrency = 1;
    let c = common::clients(&sb, &knobs);
    let e = rebalancer_fetcher::fetch(&c, &opts).await.unwrap_err();
    assert!(
        matches!(
            e.upstream(),
            Some(UpstreamError::Server { status: 500, .. })
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Unavailable);
    // Gave up after exactly max_retries retries of the first lead.
    assert_eq!(c.stats.retries(), 2);
    assert_eq!(sb.counts().cms_get, 3);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_campaign_fails_the_fetch() {
    let sb = start(small_world(16)).await;
    let mut opts = options(&sb);
    opts.campaigns[0].campaign_id = 424_242;
    let e = rebalancer_fetcher::fetch(&common::clients(&sb, &Knobs::default()), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            FetchError::UnknownCampaign {
                campaign_id: 424_242,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Data);
    sb.shutdown().await;
}
