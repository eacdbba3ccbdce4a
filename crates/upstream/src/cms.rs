//! Client of the dialer CMS: read a lead's user mapping (GET lead-user, all
//! pages merged) and write assign/unassign changes (PUT
//! campaignLeadUserMapping). Basic authentication.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::base_url::BaseUrl;
use crate::error::{Api, UpstreamError};
use crate::http::{
    body_prefix, check_base_url, endpoint_label, join_url, malformed, status_error, Fence, Http,
    HttpSettings, Replay, Reply, Stats,
};
use crate::lenient::{field, first_text, parse_json, string_like, u64_like};

/// Upper bound on pages read for one lead, against servers that never stop:
/// going past it is an error, never a truncated list.
pub(crate) const MAX_PAGES: u32 = 10_000;

/// Settings of the CMS client.
#[derive(Debug, Clone)]
pub struct CmsConfig {
    /// Scheme, host and port, maybe with a path prefix.
    pub base_url: BaseUrl,
    pub username: String,
    pub password: SecretString,
    pub contact_center_id: u64,
    /// `limit` asked per page.
    pub page_size: u32,
    /// A page whose two lists are both shorter than `page_size` is the last
    /// one, so a lead whose users fit one page costs one GET. This TRUSTS the
    /// server to honour `limit`: a CMS that silently caps `limit` below
    /// `page_size` answers short pages while more users remain, and with
    /// this set those leads would be read TRUNCATED (no error; see
    /// [`CmsClient::lead_users`]). `false` pages on until a page with both
    /// lists empty (one more GET per lead), which is complete whatever the
    /// server caps `limit` to.
    pub short_page_ends: bool,
    pub http: HttpSettings,
}

/// A lead's user mapping, all pages merged, ids de-duplicated in first-seen
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeadUsers {
    pub campaign_lead_id: Option<u64>,
    pub lead_id: u64,
    pub campaign_id: u64,
    pub assigned_user_ids: Vec<String>,
    pub unassigned_user_ids: Vec<String>,
    pub assigned_campaign_user_ids: Vec<u64>,
    pub unassigned_campaign_user_ids: Vec<u64>,
}

/// The body of one PUT campaignLeadUserMapping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingUpdate {
    pub lead_id: u64,
    pub campaign_id: u64,
    pub assigned_user_ids: Vec<String>,
    pub unassigned_user_ids: Vec<String>,
}

impl MappingUpdate {
    /// The JSON body as sent on the wire (what a journal keeps of a PUT).
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a mapping update serialises")
    }

    /// A body made by [`MappingUpdate::to_body`], read back.
    pub fn from_body(body: &str) -> Result<MappingUpdate, String> {
        serde_json::from_str(body).map_err(|e| format!("a PUT body does not parse: {e}"))
    }
}

impl LeadUsers {
    /// The PUT's echo in the wire's field names, ids only (what a journal
    /// keeps of an answer).
    pub fn to_echo_json(&self) -> String {
        serde_json::json!({
            "leadId": self.lead_id,
            "campaignId": self.campaign_id,
            "assignedUserIds": self.assigned_user_ids,
            "unassignedUserIds": self.unassigned_user_ids,
        })
        .to_string()
    }
}

/// Client of the CMS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CmsClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    base_url: BaseUrl,
    username: String,
    password: SecretString,
    contact_center_id: u64,
    page_size: u32,
    short_page_ends: bool,
}

impl CmsClient {
    /// Builds the client; fails on a bad base URL, page size or `ca_file`.
    pub fn new(cfg: CmsConfig, stats: Stats) -> Result<Self, UpstreamError> {
        check_base_url("cms.base_url", &cfg.base_url, &cfg.http)?;
        if cfg.page_size == 0 {
            return Err(UpstreamError::config("cms.page_size", "must be at least 1"));
        }
        let http = Http::new("cms", &cfg.http, stats)?;
        Ok(CmsClient {
            inner: Arc::new(Inner {
                http,
                base_url: cfg.base_url,
                username: cfg.username,
                password: cfg.password,
                contact_center_id: cfg.contact_center_id,
                page_size: cfg.page_size,
                short_page_ends: cfg.short_page_ends,
            }),
        })
    }

    /// All pages of GET {base}/cms/configuration/cc/{cc}/process/{p}/campaign/{c}/lead-user?leadId=&limit=&offset=, merged.
    ///
    /// ASSUMPTION (the contract is vague about paging two lists in one
    /// response): `limit`/`offset` apply to each list independently. After
    /// each page the offset advances by the longer of the two lists on that
    /// page; ids are de-duplicated, so this is also correct when the server
    /// pages the concatenation of both lists. A page that brings no new id
    /// (the server ignores `offset`, or repeats itself) and more than
    /// [`MAX_PAGES`] pages are errors (`PagingStalled`): a truncated pool
    /// would be planned as if complete.
    ///
    /// Where paging ends depends on `CmsConfig::short_page_ends`:
    ///
    /// - `true`: at a page whose lists are both shorter than the `limit`
    ///   asked (or both empty). One GET for a lead whose users fit a page.
    ///   ASSUMPTION: the server honours `limit` up to `page_size`. A CMS
    ///   that caps `limit` silently (asked 500, answers at most 100) makes
    ///   every page short, and a lead with more users than the cap is read
    ///   TRUNCATED, without an error: nothing in a page tells a capped page
    ///   from a last one (the contract has no total count and does not echo
    ///   the limit). Against such a server, set `page_size` at or below its
    ///   cap, or `short_page_ends = false`.
    /// - `false`: at a page with both lists empty, whatever `limit` the
    ///   server really applied (one more GET per lead).
    pub async fn lead_users(
        &self,
        process_id: u64,
        campaign_id: u64,
        lead_id: u64,
    ) -> Result<LeadUsers, UpstreamError> {
        let inner = &self.inner;
        let base = self.lead_user_url(process_id, campaign_id)?;
        let mut merged = Merger::default();
        let mut offset: u64 = 0;
        for _ in 0..MAX_PAGES {
            let (page, endpoint) = self
                .get_page(&base, lead_id, inner.page_size, offset)
                .await?;
            if page.assigned_user_ids.is_empty() && page.unassigned_user_ids.is_empty() {
                merged.first_page(&page);
                return Ok(merged.finish(lead_id, campaign_id));
            }
            let step = page
                .assigned_user_ids
                .len()
                .max(page.unassigned_user_ids.len()) as u64;
            if merged.absorb(page) == 0 {
                return Err(UpstreamError::PagingStalled {
                    api: Api::Cms,
                    endpoint,
                    detail: format!(
                        "the page at offset {offset} brought no new user id (the server \
                         ignores offset or repeats a page), so the lead's pool cannot be read \
                         completely"
                    ),
                });
            }
            if inner.short_page_ends && step < u64::from(inner.page_size) {
                // Both lists shorter than asked: the last page, if the
                // server honours `limit` (see above).
                return Ok(merged.finish(lead_id, campaign_id));
            }
            offset += step;
        }
        Err(UpstreamError::PagingStalled {
            api: Api::Cms,
            endpoint: endpoint_label("GET", &base),
            detail: format!("lead {lead_id} still had more users after {MAX_PAGES} pages"),
        })
    }

    /// ONE page of GET lead-user (`limit` and `offset` as given, at least 1
    /// for `limit`), as [`LeadUsers`]: a cheap authenticated read (e.g.
    /// `rebalancer check`), not a lead's whole pool.
    pub async fn lead_users_page(
        &self,
        process_id: u64,
        campaign_id: u64,
        lead_id: u64,
        limit: u32,
        offset: u64,
    ) -> Result<LeadUsers, UpstreamError> {
        let base = self.lead_user_url(process_id, campaign_id)?;
        let (page, _) = self.get_page(&base, lead_id, limit.max(1), offset).await?;
        let mut merged = Merger::default();
        merged.absorb(page);
        Ok(merged.finish(lead_id, campaign_id))
    }

    /// {base}/cms/configuration/cc/{cc}/process/{p}/campaign/{c}/lead-user
    fn lead_user_url(&self, process_id: u64, campaign_id: u64) -> Result<Url, UpstreamError> {
        let (cc, process, campaign) = (
            self.inner.contact_center_id.to_string(),
            process_id.to_string(),
            campaign_id.to_string(),
        );
        let path = [
            "cms",
            "configuration",
            "cc",
            &cc,
            "process",
            &process,
            "campaign",
            &campaign,
            "lead-user",
        ];
        join_url(&self.inner.base_url, &path)
    }

    /// One GET of `base` for a lead, with retries; the page and its endpoint
    /// label.
    async fn get_page(
        &self,
        base: &Url,
        lead_id: u64,
        limit: u32,
        offset: u64,
    ) -> Result<(LeadUsersPage, String), UpstreamError> {
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("leadId", &lead_id.to_string())
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let endpoint = endpoint_label("GET", &url);
        let page = self
            .inner
            .http
            .execute(
                Api::Cms,
                &endpoint,
                Replay::Safe,
                || self.request(Method::GET, url.clone()),
                |reply| interpret(&endpoint, reply),
            )
            .await?;
        Ok((page, endpoint))
    }

    /// PUT {base}/cms/configuration/voice/campaignLeadUserMapping; returns the
    /// echoed mapping.
    ///
    /// Retried (within `http.max_retries`) only when the CMS certainly did
    /// not process the request: 429, or no connection was made. When the
    /// write MAY have happened, the error is
    /// [`UpstreamError::AmbiguousWrite`] (`is_ambiguous_write()`): a timeout
    /// or transport failure after the request was sent, a 5xx, a 2xx with an
    /// empty or malformed body, or a 2xx whose echo names another lead or
    /// campaign. The caller reads the mapping back before trying again.
    /// 400/404 (and 401/403) are definite refusals carrying the server's
    /// message.
    pub async fn put_mapping(&self, update: &MappingUpdate) -> Result<LeadUsers, UpstreamError> {
        self.put_mapping_fenced(update, None).await
    }

    /// [`CmsClient::put_mapping`], with `fence` asked right before each
    /// attempt goes out (after the write budget's wait): when it refuses,
    /// nothing is sent and the error is `UpstreamError::Fenced`.
    pub async fn put_mapping_fenced(
        &self,
        update: &MappingUpdate,
        fence: Option<Fence<'_>>,
    ) -> Result<LeadUsers, UpstreamError> {
        let inner = &self.inner;
        let url = join_url(
            &inner.base_url,
            &["cms", "configuration", "voice", "campaignLeadUserMapping"],
        )?;
        let endpoint = format!(
            "{} (leadId={}, campaignId={})",
            endpoint_label("PUT", &url),
            update.lead_id,
            update.campaign_id
        );
        let page = inner
            .http
            .execute_fenced(
                Api::Cms,
                &endpoint,
                Replay::Write,
                || self.request(Method::PUT, url.clone()).json(update),
                |reply| interpret_put(&endpoint, update, reply),
                fence,
            )
            .await?;
        let mut merged = Merger::default();
        merged.absorb(page);
        Ok(merged.finish(update.lead_id, update.campaign_id))
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let inner = &self.inner;
        inner
            .http
            .client()
            .request(method, url)
            .basic_auth(&inner.username, Some(inner.password.expose_secret()))
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
    }
}

/// A success body becomes a page, anything else an error.
fn interpret(endpoint: &str, reply: &Reply) -> Result<LeadUsersPage, UpstreamError> {
    if reply.status.is_success() {
        return parse_lead_users(&reply.body)
            .map_err(|d| malformed(Api::Cms, endpoint, d, &reply.body));
    }
    let (code, message) = parse_error_body(&reply.body);
    Err(status_error(Api::Cms, endpoint, reply, code, message))
}

/// The reply to a PUT: the echo, a definite refusal, or `AmbiguousWrite`
/// when a 2xx does not show that this very update was applied.
///
/// The contract promises an echo of the request; a success without one (an
/// empty body, e.g. 204), with one we cannot parse, or with one naming
/// another lead or campaign does not tell whether our change was applied.
/// An echo that omits `leadId`/`campaignId` is taken as ours (see
/// `Merger::finish`).
fn interpret_put(
    endpoint: &str,
    update: &MappingUpdate,
    reply: &Reply,
) -> Result<LeadUsersPage, UpstreamError> {
    if !reply.status.is_success() {
        return interpret(endpoint, reply);
    }
    let ambiguous = |detail: String| UpstreamError::AmbiguousWrite {
        api: Api::Cms,
        endpoint: endpoint.to_string(),
        detail,
    };
    let status = reply.status.as_u16();
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ambiguous(format!(
            "HTTP {status} with an empty body, where the contract promises an echo of the update"
        )));
    }
    let page = parse_lead_users(&reply.body).map_err(|detail| {
        ambiguous(format!(
            "HTTP {status} with a body that could not be understood ({detail}); body starts with {:?}",
            body_prefix(&reply.body)
        ))
    })?;
    let mismatch = |what: &str, echoed: Option<u64>, sent: u64| {
        echoed
            .filter(|&echoed| echoed != sent)
            .map(|echoed| format!("HTTP {status} echoing {what} {echoed}, not {sent} as sent"))
    };
    if let Some(detail) = mismatch("leadId", page.lead_id, update.lead_id)
        .or_else(|| mismatch("campaignId", page.campaign_id, update.campaign_id))
    {
        return Err(ambiguous(detail));
    }
    Ok(page)
}

/// One page of a lead-user response (or the PUT echo), as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LeadUsersPage {
    pub campaign_lead_id: Option<u64>,
    pub lead_id: Option<u64>,
    pub campaign_id: Option<u64>,
    pub assigned_user_ids: Vec<String>,
    pub unassigned_user_ids: Vec<String>,
    pub assigned_campaign_user_ids: Vec<u64>,
    pub unassigned_campaign_user_ids: Vec<u64>,
}

/// Parses one lead-user page. Liberal: missing or null lists are empty;
/// user ids may be strings or numbers (numbers are stringified); null
/// entries are skipped. Anything else in a list is an error, never silently
/// dropped.
pub(crate) fn parse_lead_users(bytes: &[u8]) -> Result<LeadUsersPage, String> {
    let value = parse_json(bytes)?;
    if !value.is_object() {
        return Err("expected a JSON object".to_string());
    }
    let id = |key: &str| -> Result<Option<u64>, String> {
        match field(&value, key) {
            None => Ok(None),
            Some(v) => u64_like(v)
                .map(Some)
                .ok_or_else(|| format!("`{key}` is not a non-negative integer")),
        }
    };
    Ok(LeadUsersPage {
        campaign_lead_id: id("campaignLeadId")?,
        lead_id: id("leadId")?,
        campaign_id: id("campaignId")?,
        assigned_user_ids: list(&value, "assignedUserIds", string_like)?,
        unassigned_user_ids: list(&value, "unassignedUserIds", string_like)?,
        assigned_campaign_user_ids: list(&value, "assignedCampaignUserIds", u64_like)?,
        unassigned_campaign_user_ids: list(&value, "unassignedCampaignUserIds", u64_like)?,
    })
}

fn list<T>(value: &Value, key: &str, item: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, String> {
    let Some(v) = field(value, key) else {
        return Ok(Vec::new());
    };
    let Some(entries) = v.as_array() else {
        return Err(format!("`{key}` is not an array"));
    };
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_null())
        .map(|(i, e)| item(e).ok_or_else(|| format!("`{key}[{i}]` has an unexpected type")))
        .collect()
}

/// Code and message of a CMS error body
/// (`{"statusCode":404,"status":"Not Found","errorCode":"CONF-1001","errorMessage":"..."}`).
/// Bodies that are not JSON are quoted (the start of them).
fn parse_error_body(bytes: &[u8]) -> (Option<String>, String) {
    match parse_json(bytes) {
        Ok(v) if v.is_object() => (
            first_text(&v, &["errorCode", "code"]),
            first_text(&v, &["errorMessage", "message", "error", "status"]).unwrap_or_default(),
        ),
        _ => (None, body_prefix(bytes)),
    }
}

/// Accumulates pages, de-duplicating every list in first-seen order.
#[derive(Default)]
struct Merger {
    head: Option<(Option<u64>, Option<u64>, Option<u64>)>,
    assigned: Distinct<String>,
    unassigned: Distinct<String>,
    assigned_campaign: Distinct<u64>,
    unassigned_campaign: Distinct<u64>,
}

impl Merger {
    /// Takes the ids of the first page seen.
    fn first_page(&mut self, page: &LeadUsersPage) {
        self.head
            .get_or_insert((page.campaign_lead_id, page.lead_id, page.campaign_id));
    }

    /// Adds a page; returns how many new user ids it brought.
    fn absorb(&mut self, page: LeadUsersPage) -> usize {
        self.first_page(&page);
        let new = self.assigned.extend(page.assigned_user_ids)
            + self.unassigned.extend(page.unassigned_user_ids);
        self.assigned_campaign
            .extend(page.assigned_campaign_user_ids);
        self.unassigned_campaign
            .extend(page.unassigned_campaign_user_ids);
        new
    }

    /// ASSUMPTION: when the CMS omits `leadId`/`campaignId`, they are the
    /// ones we asked for.
    fn finish(self, lead_id: u64, campaign_id: u64) -> LeadUsers {
        let (campaign_lead_id, page_lead, page_campaign) = self.head.unwrap_or_default();
        LeadUsers {
            campaign_lead_id,
            lead_id: page_lead.unwrap_or(lead_id),
            campaign_id: page_campaign.unwrap_or(campaign_id),
            assigned_user_ids: self.assigned.items,
            unassigned_user_ids: self.unassigned.items,
            assigned_campaign_user_ids: self.assigned_campaign.items,
            unassigned_campaign_user_ids: self.unassigned_campaign.items,
        }
    }
}

struct Distinct<T> {
    items: Vec<T>,
    seen: HashSet<T>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            items: Vec::new(),
            seen: HashSet::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Distinct<T> {
    /// Appends the unseen items; returns how many there were.
    fn extend(&mut self, items: Vec<T>) -> usize {
        let before = self.items.len();
        for item in items {
            if self.seen.insert(item.clone()) {
                self.items.push(item);
            }
        }
        self.items.len() - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_body_reads_back_as_sent_in_the_wire_names() {
        let update = MappingUpdate {
            lead_id: 7,
            campaign_id: 3,
            assigned_user_ids: vec!["a".into(), "b".into()],
            unassigned_user_ids: vec!["c".into()],
        };
        let body = update.to_body();
        assert_eq!(
            body,
            r#"{"leadId":7,"campaignId":3,"assignedUserIds":["a","b"],"unassignedUserIds":["c"]}"#
        );
        assert_eq!(MappingUpdate::from_body(&body).unwrap(), update);
        let e = MappingUpdate::from_body("{").unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
        let echo = LeadUsers {
            lead_id: 7,
            campaign_id: 3,
            assigned_user_ids: vec!["a".into()],
            ..LeadUsers::default()
        };
        let json: serde_json::Value = serde_json::from_str(&echo.to_echo_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"leadId": 7, "campaignId": 3, "assignedUserIds": ["a"], "unassignedUserIds": []})
        );
    }

    #[test]
    fn parses_the_contract_sample() {
        let body = br#"{"campaignLeadId": 1, "assignedCampaignUserIds": [1],
            "unassignedCampaignUserIds": [3817, 3802], "leadId": 2, "campaignId": 1,
            "assignedUserIds": ["anav_agent"], "unassignedUserIds": ["madhur1", "exe_gs"]}"#;
        let page = parse_lead_users(body).unwrap();
        assert_eq!(page.campaign_lead_id, Some(1));
        assert_eq!(page.lead_id, Some(2));
        assert_eq!(page.assigned_user_ids, ["anav_agent"]);
        assert_eq!(page.unassigned_user_ids, ["madhur1", "exe_gs"]);
        assert_eq!(page.unassigned_campaign_user_ids, [3817, 3802]);
    }

    #[test]
    fn liberal_ids_and_missing_lists() {
        let page =
            parse_lead_users(br#"{"leadId":"2","assignedUserIds":[12, "x", null]}"#).unwrap();
        assert_eq!(page.lead_id, Some(2));
        assert_eq!(page.assigned_user_ids, ["12", "x"]);
        assert!(page.unassigned_user_ids.is_empty());
        assert!(parse_lead_users(br#"{"assignedUserIds":[{"a":1}]}"#).is_err());
        assert!(parse_lead_users(b"[]").is_err());
    }

    #[test]
    fn error_bodies() {
        let (code, msg) = parse_error_body(
            br#"{"statusCode":404,"status":"Not Found","errorCode":"CONF-1001","errorMessage":"Object doesn't exist"}"#,
        );
        assert_eq!(code.as_deref(), Some("CONF-1001"));
        assert_eq!(msg, "Object doesn't exist");
        let (code, msg) = parse_error_body(b"<html>gateway</html>");
        assert_eq!(code, None);
        assert_eq!(msg, "<html>gateway</html>");
    }
}
