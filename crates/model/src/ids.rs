//! Identifiers shared across the pipeline.

use serde::{Deserialize, Deserializer, Serialize};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// An agent, named by its CMS user id (`anav_agent`). The CMS user id equals
/// the Webex Campaign username; Zoho users are joined to it by email.
///
/// Shared, immutable text: a clone is a reference count, not a copy, so
/// plans that name an agent on every lead of its pool (millions of entries
/// at bench scale) hold each name once.
///
/// Deserialising makes one allocation per name; inside
/// [`AgentId::interning`] one per distinct name, as the fetcher's snapshots
/// have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AgentId(pub Arc<str>);

thread_local! {
    /// The names deserialised so far inside [`AgentId::interning`] on this
    /// thread; `None` outside it.
    static INTERNED: RefCell<Option<HashSet<Arc<str>>>> = const { RefCell::new(None) };
}

/// Puts back the interner that was active before [`AgentId::interning`],
/// also when the parse inside it panics.
struct Restore(Option<HashSet<Arc<str>>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        INTERNED.with(|i| *i.borrow_mut() = outer);
    }
}

impl AgentId {
    pub fn new(id: impl AsRef<str>) -> Self {
        AgentId(Arc::from(id.as_ref()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Run `parse` (a deserialisation on this thread) with agent names
    /// interned: every `AgentId` it makes with the same text shares one
    /// allocation. A snapshot names each agent once per lead of its pool;
    /// at 4M pool entries that is 86 MB of copies otherwise.
    pub fn interning<T>(parse: impl FnOnce() -> T) -> T {
        let outer = INTERNED.with(|i| i.replace(Some(HashSet::new())));
        let _restore = Restore(outer);
        parse()
    }

    fn from_text(text: &str) -> AgentId {
        INTERNED.with(|i| match i.borrow_mut().as_mut() {
            Some(seen) => match seen.get(text) {
                Some(name) => AgentId(Arc::clone(name)),
                None => {
                    let name: Arc<str> = Arc::from(text);
                    seen.insert(Arc::clone(&name));
                    AgentId(name)
                }
            },
            None => AgentId::new(text),
        })
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = AgentId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an agent id (text)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AgentId, E> {
                Ok(AgentId::from_text(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(Arc::from(s))
    }
}

/// A lead, named by the campaign it belongs to and its lead id. Lead ids are
/// assumed unique only within a campaign, so both are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeadKey {
    pub campaign_id: u64,
    pub lead_id: u64,
}

impl fmt::Display for LeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.campaign_id, self.lead_id)
    }
}

impl std::str::FromStr for LeadKey {
    type Err = String;

    /// Parses `CAMPAIGN/LEAD`, e.g. `501/1003`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (c, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not CAMPAIGN/LEAD (e.g. 501/1003)"))?;
        let num = |part: &str, what: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{s}`: the {what} id `{part}` is not a whole number"))
        };
        Ok(LeadKey {
            campaign_id: num(c, "campaign")?,
            lead_id: num(l, "lead")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parsed_while_interning_share_one_allocation() {
        let text = br#"["a1", "a2", "a1", "a\u0031"]"#;
        let ids: Vec<AgentId> = AgentId::interning(|| serde_json::from_slice(text).unwrap());
        assert_eq!(ids[0], ids[2]);
        assert!(Arc::ptr_eq(&ids[0].0, &ids[2].0));
        assert!(
            Arc::ptr_eq(&ids[0].0, &ids[3].0),
            "escaped text is interned too"
        );
        assert!(!Arc::ptr_eq(&ids[0].0, &ids[1].0));
        // Outside `interning`, each name is its own allocation again.
        let plain: Vec<AgentId> = serde_json::from_slice(text).unwrap();
        assert_eq!(plain, ids);
        assert!(!Arc::ptr_eq(&plain[0].0, &plain[2].0));
    }

    #[test]
    fn a_panic_inside_interning_leaves_no_interner_behind() {
        let caught = std::panic::catch_unwind(|| AgentId::interning(|| panic!("parse failed")));
        assert!(caught.is_err());
        INTERNED.with(|i| assert!(i.borrow().is_none()));
    }

    #[test]
    fn lead_key_round_trips_through_text() {
        let k: LeadKey = "501/1003".parse().unwrap();
        assert_eq!(
            k,
            LeadKey {
                campaign_id: 501,
                lead_id: 1003
            }
        );
        assert_eq!(k.to_string(), "501/1003");
        assert!("501".parse::<LeadKey>().is_err());
        assert!("a/1".parse::<LeadKey>().unwrap_err().contains("campaign"));
    }
}
