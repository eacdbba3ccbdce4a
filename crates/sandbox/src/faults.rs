//! Fault injection per endpoint: latency, "fail the first N requests",
//! random 500 / 429 (with `Retry-After`), malformed 200 bodies (truncated
//! JSON, or a proxy's HTML page), and 200s with an empty (or null) result,
//! the way an upstream in trouble may answer "nothing" instead of an error.
//! Every random decision for a request comes from an RNG seeded with the
//! sandbox's seed, the endpoint, the request's key (the lead and page it
//! asks for, or the lead it writes) and how many requests with that key
//! came before it: the n-th request for a lead gets the same faults
//! whatever other requests ran at the same time, so a seed replays
//! exactly under concurrency (one shared RNG did not: the order in which
//! concurrent requests drew from it decided who failed).
//!
//! Two faults only make sense for a write (the CMS PUT): apply the change
//! and THEN answer 500 ([`FaultSpec::p_500_after_apply`]) or a malformed 200
//! ([`FaultSpec::p_malformed_after_apply`]), the ambiguous outcomes an
//! applier must read back after. They are [`AfterApply`] decisions, rolled
//! only for requests that no other fault hit.
//!
//! Decisions are made here; each API module turns a [`Fault`] into its own
//! error body (see `cms::fault_response` and friends), because every upstream
//! words its errors differently. Faults run before normal handling, so a
//! faulted request is rejected whatever its credentials.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Faults for every endpoint.
#[derive(Clone, Default, Debug)]
pub struct Faults {
    /// CMS GET lead-user.
    pub cms_get: FaultSpec,
    /// CMS PUT campaignLeadUserMapping.
    pub cms_put: FaultSpec,
    /// Webex Campaign users.
    pub webex: FaultSpec,
    /// Zoho restrict_to.
    pub zoho: FaultSpec,
    /// Zoho OAuth token.
    pub zoho_token: FaultSpec,
}

/// Faults for one endpoint. Applied in this order: latency, `fail_first`,
/// then the probabilities (500, 429, malformed, HTML, empty), then (CMS PUT only)
/// the after-apply ones (500 after apply, malformed after apply).
#[derive(Clone, Default, Debug)]
pub struct FaultSpec {
    /// Probability of a 500 with the API's error body.
    pub p_500: f64,
    /// Probability of a 429 with a `Retry-After` header.
    pub p_429: f64,
    /// The `Retry-After` value (seconds) of every 429.
    pub retry_after_secs: u64,
    /// Probability of a 200 with a truncated JSON body.
    pub p_malformed: f64,
    /// Probability of a 200 with a proxy's HTML page (`text/html`) instead
    /// of the API's JSON, as a misconfigured or overloaded proxy answers.
    pub p_html: f64,
    /// Probability of a 200 with an empty result: Webex `{"users":[]}`, CMS
    /// empty lists, Zoho `restrict_to: []` without more records, a token
    /// body with neither token nor error.
    pub p_empty: f64,
    /// With `p_empty`: the list is `null` instead of `[]` (Webex
    /// `{"users":null}`, and so on).
    pub empty_null: bool,
    /// Added to every request of the endpoint.
    pub latency: Duration,
    /// Deterministic alternative to probabilities, for tests: fail the first N
    /// requests of this endpoint with this status (500/429/etc.)
    pub fail_first: u32,
    /// Status of the `fail_first` failures; 0 means 500. For Webex, 200 gives
    /// the "request was not processed" (code 1010) body and 498 the expired
    /// token body.
    pub fail_status: u16,
    /// CMS PUT only: probability that the change is applied and the answer
    /// is then a 500 with the CMS error body.
    pub p_500_after_apply: f64,
    /// CMS PUT only: probability that the change is applied and the answer
    /// is then a 200 with a truncated JSON body.
    pub p_malformed_after_apply: f64,
}

/// Which endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    CmsGet = 0,
    CmsPut = 1,
    Webex = 2,
    Zoho = 3,
    ZohoToken = 4,
}

impl Endpoint {
    fn spec(self, faults: &Faults) -> &FaultSpec {
        match self {
            Endpoint::CmsGet => &faults.cms_get,
            Endpoint::CmsPut => &faults.cms_put,
            Endpoint::Webex => &faults.webex,
            Endpoint::Zoho => &faults.zoho,
            Endpoint::ZohoToken => &faults.zoho_token,
        }
    }
}

/// A decision to fail one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the API's error body for it; `retry_after`
    /// is set for 429s.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Answer 200 with a truncated JSON body.
    Malformed,
    /// Answer 200 with a proxy's HTML page ([`html_response`]).
    Html,
    /// Answer 200 with an empty result (`null` lists with `null`).
    Empty { null: bool },
}

/// A decision to answer a write badly after applying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterApply {
    /// Apply, then answer 500.
    Status500,
    /// Apply, then answer 200 with a truncated JSON body.
    Malformed,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Latency to add first.
    pub latency: Duration,
    /// Fail it this way (nothing is applied).
    pub fault: Option<Fault>,
    /// A write no fault hit: apply it, then answer this way.
    pub after_apply: Option<AfterApply>,
}

/// The live fault configuration with its counters.
#[derive(Debug)]
pub struct FaultState {
    faults: Faults,
    failed_first: [u32; 5],
    seed: u64,
    /// Requests so far per (endpoint, key).
    seen: HashMap<(Endpoint, String), u32>,
}

impl FaultState {
    pub fn new(faults: Faults, seed: u64) -> Self {
        FaultState {
            faults,
            failed_first: [0; 5],
            seed,
            seen: HashMap::new(),
        }
    }

    /// Replace the faults and reset the `fail_first` counters.
    pub fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.failed_first = [0; 5];
    }

    /// The latency, the fault (if any) and, for a write no fault hit, the
    /// after-apply answer (if any) of one request for `key`.
    pub fn decide(&mut self, endpoint: Endpoint, key: &str) -> Decision {
        let n = self.seen.entry((endpoint, key.to_owned())).or_insert(0);
        let mut hasher = rustc_hash::FxHasher::default();
        (self.seed, endpoint as u8, key, *n).hash(&mut hasher);
        *n += 1;
        let mut rng = ChaCha8Rng::seed_from_u64(hasher.finish());
        let (latency, fault) = self.fault(endpoint, &mut rng);
        let after_apply = match fault {
            None => after_apply(endpoint.spec(&self.faults), &mut rng),
            Some(_) => None,
        };
        Decision {
            latency,
            fault,
            after_apply,
        }
    }

    fn fault(&mut self, endpoint: Endpoint, rng: &mut ChaCha8Rng) -> (Duration, Option<Fault>) {
        let spec = endpoint.spec(&self.faults).clone();
        let retry_after = |status: u16| (status == 429).then_some(spec.retry_after_secs);
        let counter = &mut self.failed_first[endpoint as usize];
        if *counter < spec.fail_first {
            *counter += 1;
            let status = if spec.fail_status == 0 {
                500
            } else {
                spec.fail_status
            };
            let fault = Fault::Status {
                status,
                retry_after: retry_after(status),
            };
            return (spec.latency, Some(fault));
        }
        let mut roll = |p: f64| p > 0.0 && rng.gen_bool(p.min(1.0));
        let fault = if roll(spec.p_500) {
            Some(Fault::Status {
                status: 500,
                retry_after: None,
            })
        } else if roll(spec.p_429) {
            Some(Fault::Status {
                status: 429,
                retry_after: retry_after(429),
            })
        } else if roll(spec.p_malformed) {
            Some(Fault::Malformed)
        } else if roll(spec.p_html) {
            Some(Fault::Html)
        } else if roll(spec.p_empty) {
            Some(Fault::Empty {
                null: spec.empty_null,
            })
        } else {
            None
        };
        (spec.latency, fault)
    }
}

/// Whether a request that no [`Fault`] hit is to be answered badly after it
/// is applied (only writes have these probabilities).
fn after_apply(spec: &FaultSpec, rng: &mut ChaCha8Rng) -> Option<AfterApply> {
    let (p_500, p_malformed) = (spec.p_500_after_apply, spec.p_malformed_after_apply);
    let mut roll = |p: f64| p > 0.0 && rng.gen_bool(p.min(1.0));
    if roll(p_500) {
        Some(AfterApply::Status500)
    } else if roll(p_malformed) {
        Some(AfterApply::Malformed)
    } else {
        None
    }
}

/// A JSON response with an arbitrary status (498 included) and, for 429s,
/// a `Retry-After` header.
pub fn json_response(status: u16, body: &serde_json::Value, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

/// A 200 whose JSON body is cut off mid-way.
pub fn malformed_response(truncated: &'static str) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        truncated,
    )
        .into_response()
}

/// A 200 with the HTML error page of a proxy in front of the API, the
/// same for every API (a proxy does not know which one it fronts).
pub fn html_response() -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=utf-8")],
        "<!DOCTYPE html>\n<html><head><title>Service temporarily unavailable</title></head>\n\
         <body><h1>Please wait</h1><p>The upstream is busy; this page was served by the \
         gateway.</p></body></html>\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(state: &mut FaultState, endpoint: Endpoint) -> Option<Fault> {
        state.decide(endpoint, "k").fault
    }

    #[test]
    fn fail_first_then_pass() {
        let faults = Faults {
            cms_get: FaultSpec {
                fail_first: 2,
                fail_status: 429,
                retry_after_secs: 3,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let mut state = FaultState::new(faults, 1);
        let expected = Some(Fault::Status {
            status: 429,
            retry_after: Some(3),
        });
        assert_eq!(fault(&mut state, Endpoint::CmsGet), expected);
        assert_eq!(fault(&mut state, Endpoint::CmsPut), None);
        assert_eq!(fault(&mut state, Endpoint::CmsGet), expected);
        assert_eq!(fault(&mut state, Endpoint::CmsGet), None);
    }

    #[test]
    fn empty_answers() {
        let faults = Faults {
            webex: FaultSpec {
                p_empty: 1.0,
                empty_null: true,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let mut state = FaultState::new(faults, 1);
        assert_eq!(
            fault(&mut state, Endpoint::Webex),
            Some(Fault::Empty { null: true })
        );
        assert_eq!(fault(&mut state, Endpoint::Zoho), None);
    }

    #[test]
    fn after_apply_faults_only_when_no_other_fault() {
        let faults = Faults {
            cms_put: FaultSpec {
                fail_first: 1,
                p_malformed_after_apply: 1.0,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let mut state = FaultState::new(faults, 1);
        let first = state.decide(Endpoint::CmsPut, "k");
        assert!(first.fault.is_some() && first.after_apply.is_none());
        let second = state.decide(Endpoint::CmsPut, "k");
        assert_eq!(
            (second.fault, second.after_apply),
            (None, Some(AfterApply::Malformed))
        );
        assert_eq!(state.decide(Endpoint::CmsGet, "k").after_apply, None);
    }

    #[test]
    fn html_pages_are_seeded_and_roughly_at_their_rate() {
        let faults = Faults {
            cms_get: FaultSpec {
                p_html: 0.03,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let draw = |seed| {
            let mut state = FaultState::new(faults.clone(), seed);
            (0..2000)
                .map(|i| {
                    state
                        .decide(Endpoint::CmsGet, &format!("lead {}", i % 40))
                        .fault
                })
                .collect::<Vec<_>>()
        };
        let first = draw(5);
        assert_eq!(first, draw(5), "the same seed gives the same faults");
        assert_ne!(first, draw(6), "another seed, other faults");
        let html = first.iter().filter(|f| **f == Some(Fault::Html)).count();
        assert!((30..90).contains(&html), "{html} of 2000 at 3 %");
        assert!(first.iter().all(|f| matches!(f, None | Some(Fault::Html))));
    }

    /// The faults a request gets depend on its key and how many requests
    /// with that key came before, not on the other keys' requests in
    /// between: a seed replays exactly under any interleaving.
    #[test]
    fn each_key_gets_the_same_faults_in_any_interleaving() {
        let faults = Faults {
            cms_put: FaultSpec {
                p_500: 0.3,
                p_500_after_apply: 0.3,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let keys: Vec<String> = (0..20).map(|l| format!("501/{l}")).collect();
        let run = |order: &mut dyn Iterator<Item = usize>| {
            let mut state = FaultState::new(faults.clone(), 9);
            let mut per_key: HashMap<String, Vec<Decision>> = HashMap::new();
            for k in order {
                let key = &keys[k % keys.len()];
                per_key
                    .entry(key.clone())
                    .or_default()
                    .push(state.decide(Endpoint::CmsPut, key));
            }
            per_key
        };
        let forward = run(&mut (0..200));
        let backward = run(&mut (0..200).rev());
        let strided = run(&mut (0..200).map(|i| (i * 7) % 200));
        assert_eq!(forward, backward);
        assert_eq!(forward, strided);
        let hit = forward
            .values()
            .flatten()
            .filter(|d| d.fault.is_some())
            .count();
        assert!((30..90).contains(&hit), "{hit} of 200 at 30 %");
    }

    #[test]
    fn probabilities_are_roughly_honoured() {
        let faults = Faults {
            zoho: FaultSpec {
                p_500: 0.5,
                ..FaultSpec::default()
            },
            ..Faults::default()
        };
        let mut state = FaultState::new(faults, 1);
        let failed = (0..1000)
            .filter(|_| fault(&mut state, Endpoint::Zoho).is_some())
            .count();
        assert!((400..600).contains(&failed), "{failed}");
    }
}
