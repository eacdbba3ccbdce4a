//! The PUT sequence of one lead, as a pure function.
//!
//! Method: the lead's assigns (agents not live on it) come first, then its
//! unassigns (agents live on it), cut into PUTs of at most
//! `apply.max_users_per_put` ids. A lead whose change fits carries it in one
//! PUT with both lists, which the CMS applies at once; a longer change is
//! split, and because every assign is sent before any unassign the lead's
//! live set only grows, then shrinks towards the target.
//!
//! Invariant: no PUT is empty and none names more than `max` ids; assigns
//! precede unassigns; replaying the sequence from the live mapping it was
//! made from never leaves a lead that had agents with none, unless the
//! target itself is empty (then only after the last PUT).
//!
//! [`keep_staffed`] is the apply-time counterpart: when the re-checks drop
//! assigns, it holds back an unassign so that the lead keeps an agent.

use std::collections::BTreeSet;

/// One PUT of one lead: the ids it assigns and unassigns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutBatch {
    pub assign: Vec<String>,
    pub unassign: Vec<String>,
}

impl PutBatch {
    /// Ids named by the PUT.
    pub fn len(&self) -> usize {
        self.assign.len() + self.unassign.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assign.is_empty() && self.unassign.is_empty()
    }
}

/// What is still to do on a lead whose live assigned set is `live`: the
/// wanted assigns not yet live and the wanted unassigns still live.
pub fn remaining(
    assign: &BTreeSet<String>,
    unassign: &BTreeSet<String>,
    live: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    (
        assign.difference(live).cloned().collect(),
        unassign.intersection(live).cloned().collect(),
    )
}

/// The PUTs that carry `assign` and `unassign` (disjoint sets), at most
/// `max` ids each (`max` ≥ 1), assigns first. Empty when there is nothing
/// to do.
pub fn batches(
    assign: &BTreeSet<String>,
    unassign: &BTreeSet<String>,
    max: usize,
) -> Vec<PutBatch> {
    let max = max.max(1);
    let ops = assign
        .iter()
        .map(|a| (true, a))
        .chain(unassign.iter().map(|u| (false, u)))
        .collect::<Vec<_>>();
    ops.chunks(max)
        .map(|chunk| PutBatch {
            assign: chunk
                .iter()
                .filter(|(a, _)| *a)
                .map(|(_, id)| (*id).clone())
                .collect(),
            unassign: chunk
                .iter()
                .filter(|(a, _)| !*a)
                .map(|(_, id)| (*id).clone())
                .collect(),
        })
        .collect()
}

/// The live set after a PUT applied.
pub fn after(live: &BTreeSet<String>, put: &PutBatch) -> BTreeSet<String> {
    let mut next = live.clone();
    next.extend(put.assign.iter().cloned());
    for u in &put.unassign {
        next.remove(u);
    }
    next
}

/// When a lead that has agents (`live`) would end with none although the
/// plan's target keeps some (`target_empty` false), holds back one unassign:
/// the first that `may_stay` accepts (an agent still active and under its
/// allowances), else the first. Returns the unassigns to send and the agent
/// kept, if any.
pub fn keep_staffed(
    live: &BTreeSet<String>,
    assign: &BTreeSet<String>,
    unassign: &BTreeSet<String>,
    target_empty: bool,
    may_stay: impl Fn(&str) -> bool,
) -> (BTreeSet<String>, Option<String>) {
    let end_empty = live
        .iter()
        .chain(assign.iter())
        .all(|a| unassign.contains(a));
    if live.is_empty() || target_empty || !end_empty || unassign.is_empty() {
        return (unassign.clone(), None);
    }
    let keep = unassign
        .iter()
        .find(|a| may_stay(a))
        .or_else(|| unassign.iter().next())
        .cloned();
    let mut rest = unassign.clone();
    if let Some(k) = &keep {
        rest.remove(k);
    }
    (rest, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_short_change_is_one_put_with_both_lists() {
        let b = batches(&set(&["b"]), &set(&["a"]), 50);
        assert_eq!(
            b,
            vec![PutBatch {
                assign: vec!["b".into()],
                unassign: vec!["a".into()]
            }]
        );
        assert!(batches(&set(&[]), &set(&[]), 50).is_empty());
    }

    #[test]
    fn a_long_change_sends_assigns_first() {
        let b = batches(&set(&["d", "e", "f"]), &set(&["a", "b"]), 2);
        let shape: Vec<(usize, usize)> = b
            .iter()
            .map(|p| (p.assign.len(), p.unassign.len()))
            .collect();
        assert_eq!(shape, [(2, 0), (1, 1), (0, 1)]);
    }

    #[test]
    fn keep_staffed_holds_back_one_unassign_preferring_an_eligible_agent() {
        let (rest, kept) = keep_staffed(
            &set(&["a", "b"]),
            &set(&[]),
            &set(&["a", "b"]),
            false,
            |a| a == "b",
        );
        assert_eq!(kept.as_deref(), Some("b"));
        assert_eq!(rest, set(&["a"]));
        // The plan empties the lead on purpose: nothing held back.
        let (rest, kept) = keep_staffed(&set(&["a"]), &set(&[]), &set(&["a"]), true, |_| true);
        assert_eq!((rest, kept), (set(&["a"]), None));
        // An assign survives: nothing held back.
        let (rest, kept) = keep_staffed(&set(&["a"]), &set(&["c"]), &set(&["a"]), false, |_| true);
        assert_eq!((rest, kept), (set(&["a"]), None));
    }

    /// A pool of ids, a live set, and a wanted target within the pool.
    fn case() -> impl Strategy<Value = (BTreeSet<String>, BTreeSet<String>, usize)> {
        (1usize..40, 0u64..u64::MAX, 0u64..u64::MAX, 1usize..12).prop_map(
            |(pool, live_bits, target_bits, max)| {
                let ids: Vec<String> = (0..pool).map(|i| format!("agent{i:02}")).collect();
                let pick = |bits: u64| -> BTreeSet<String> {
                    ids.iter()
                        .enumerate()
                        .filter(|(i, _)| {
                            bits >> (i % 64) & 1 == 1 || (bits.rotate_left(*i as u32) & 3 == 0)
                        })
                        .map(|(_, s)| s.clone())
                        .collect()
                };
                (pick(live_bits), pick(target_bits), max)
            },
        )
    }

    proptest! {
        #[test]
        fn puts_are_bounded_assigns_first_and_never_empty_a_staffed_lead((live, target, max) in case()) {
            let assign: BTreeSet<String> = target.difference(&live).cloned().collect();
            let unassign: BTreeSet<String> = live.difference(&target).cloned().collect();
            let (assign, unassign) = remaining(&assign, &unassign, &live);
            let puts = batches(&assign, &unassign, max);
            let mut state = live.clone();
            let mut seen_unassign = false;
            for (i, put) in puts.iter().enumerate() {
                prop_assert!(!put.is_empty(), "empty PUT");
                prop_assert!(put.len() <= max, "PUT of {} > {}", put.len(), max);
                if !put.assign.is_empty() {
                    prop_assert!(!seen_unassign, "an assign after an unassign");
                }
                seen_unassign |= !put.unassign.is_empty();
                state = after(&state, put);
                if !live.is_empty() && i + 1 < puts.len() {
                    prop_assert!(!state.is_empty(), "lead emptied mid-sequence");
                }
            }
            prop_assert_eq!(&state, &target);
            if !live.is_empty() && !target.is_empty() {
                prop_assert!(!state.is_empty());
            }
            let ids: usize = puts.iter().map(PutBatch::len).sum();
            prop_assert_eq!(ids, assign.len() + unassign.len());
        }

        #[test]
        fn with_keep_staffed_a_staffed_lead_keeps_an_agent((live, target, max) in case(), drop_bits in 0u64..u64::MAX) {
            // The re-checks drop some assigns; the rest must still keep the lead staffed.
            let assign: BTreeSet<String> = target.difference(&live).enumerate().filter(|(i, _)| drop_bits >> (i % 64) & 1 == 0).map(|(_, a)| a.clone()).collect();
            let unassign: BTreeSet<String> = live.difference(&target).cloned().collect();
            let (unassign, _) = keep_staffed(&live, &assign, &unassign, target.is_empty(), |_| true);
            let mut state = live.clone();
            for put in batches(&assign, &unassign, max) {
                state = after(&state, &put);
                if !live.is_empty() && !target.is_empty() {
                    prop_assert!(!state.is_empty());
                }
            }
        }
    }
}
