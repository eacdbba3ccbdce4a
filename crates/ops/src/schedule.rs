//! When `rebalancer run` starts its cycles: every fixed interval
//! (`run.every`, `--every 15m`) or at the times of a cron expression
//! (`run.cron`, `--cron "*/15 * * * *"`) evaluated in `run.timezone`.
//!
//! Every time here is a UTC instant; the time zone only decides which
//! instants match the expression. A cron schedule fires at each instant
//! whose wall-clock time in the zone matches it (`cron_after`):
//! - in a fold (the clock turned back, an hour seen twice), an interval
//!   expression (`*/15 * * * *`) fires in both passes, a fixed-time one
//!   (`30 2 * * *`) only in the first, as Vixie cron does;
//! - in a gap (the clock jumped forward), a matching time that never shows
//!   on the clock fires at the instant the gap ends.
//!
//! So the next start is always strictly after the last start and the end
//! of the last cycle (never in the past, whatever the zone did), and never
//! later than the first matching wall-clock time after that end. A cycle
//! that overruns is never overlapped: an interval restarts from the
//! cycle's start if that has not passed yet, else at once; a cron schedule
//! takes its next time after the end.
//!
//! The first cycle of a cron schedule waits for its first time
//! (`first_start`) unless asked to start at once (`--now`,
//! `run.start_immediately`); an interval has no time to wait for, so its
//! first cycle starts at once. `ready_until` is how long a success keeps
//! `/readyz` ready (the binary's `telemetry.rs`).
//!
//! The `[run]` keys of the schedule and the flap guard are read here
//! (`configured`, `min_move_interval`): at load, so `check` refuses a
//! broken `run.cron`, and again when `run` starts, where the flags that
//! override them are known.

use crate::settings::RunKeys;
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{Cron, JobType};
use std::str::FromStr;
use std::time::Duration;

/// How far apart, at most, one UTC offset change moves the wall clock
/// (tzdb's largest daylight-saving shift is 2 h, Antarctica/Troll): the
/// cron search looks this far back from the last end, and this far past its
/// best candidate, for times the fold reorders.
const MAX_SHIFT_SECS: i64 = 3 * 3600;

/// Bound on the matches one search visits (an every-second expression
/// visits about 2 × 3 h of them).
const MAX_MATCHES: usize = 100_000;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron {
        cron: Box<Cron>,
        tz: Tz,
        text: String,
    },
}

/// Why a schedule could not be read; `what` names the key or flag.
#[derive(Debug, thiserror::Error)]
#[error("{what} = {value:?} {problem}")]
pub struct ScheduleError {
    pub what: String,
    pub value: String,
    pub problem: String,
}

/// The schedule flags of `rebalancer run` (each over its `[run]` key).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--every`, over `run.every`.
    pub every: Option<String>,
    /// `--cron`, over `run.cron`.
    pub cron: Option<String>,
    /// `--once`: one cycle, no schedule needed.
    pub once: bool,
}

/// The schedule from the flags, else `[run]`; `None` when neither names
/// one, which only `--once` accepts.
pub fn configured(flags: &Flags, keys: &RunKeys) -> Result<Option<Schedule>, ScheduleError> {
    let given = |s: &str| !s.trim().is_empty();
    let parsed = match (&flags.every, &flags.cron) {
        (Some(e), _) => Some(Schedule::every("--every", e)?),
        (None, Some(c)) => Some(Schedule::cron("--cron", c, "run.timezone", &keys.timezone)?),
        (None, None) if given(&keys.every) && given(&keys.cron) => {
            return Err(ScheduleError {
                what: "run.every".into(),
                value: keys.every.clone(),
                problem: "and run.cron are both set; keep one".into(),
            })
        }
        (None, None) if given(&keys.every) => Some(Schedule::every("run.every", &keys.every)?),
        (None, None) if given(&keys.cron) => Some(Schedule::cron(
            "run.cron",
            &keys.cron,
            "run.timezone",
            &keys.timezone,
        )?),
        (None, None) => None,
    };
    match parsed {
        None if !flags.once => Err(ScheduleError {
            what: "run.every".into(),
            value: String::new(),
            problem: "and run.cron are both empty; set one (e.g. run.every = \"15m\"), pass --every/--cron, or run one cycle with --once".into(),
        }),
        other => Ok(other),
    }
}

/// Longest flap guard: a year (a longer one would reach back past any
/// journal, and dates built from it could overflow).
pub const MAX_MOVE_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

/// `run.min_move_interval` as a duration (`0s` turns the guard off), at
/// most [`MAX_MOVE_INTERVAL`].
pub fn min_move_interval(keys: &RunKeys) -> Result<Duration, ScheduleError> {
    let err = |problem: String| ScheduleError {
        what: "run.min_move_interval".into(),
        value: keys.min_move_interval.clone(),
        problem,
    };
    let d = humantime::parse_duration(keys.min_move_interval.trim()).map_err(|e| {
        err(format!(
            "is not a duration ({e}); write it like \"1h\" or \"0s\" (off)"
        ))
    })?;
    if d > MAX_MOVE_INTERVAL {
        return Err(err("is longer than a year; write at most \"366d\"".into()));
    }
    Ok(d)
}

impl Schedule {
    /// `15m`, `1h 30m`, `90s` (humantime), at least one second.
    pub fn every(what: &str, text: &str) -> Result<Schedule, ScheduleError> {
        let err = |problem: String| ScheduleError {
            what: what.to_owned(),
            value: text.to_owned(),
            problem,
        };
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            err(format!(
                "is not a duration ({e}); write it like \"15m\" or \"1h\""
            ))
        })?;
        if d < Duration::from_secs(1) {
            return Err(err("is shorter than 1 s; a cycle needs time to run".into()));
        }
        if chrono::Duration::from_std(d).is_err() || d > Duration::from_secs(366 * 86_400) {
            return Err(err(
                "is longer than a year; write a shorter interval or use run.cron".into(),
            ));
        }
        Ok(Schedule::Every(d))
    }

    /// A 5- or 6-field cron expression in the IANA time zone `tz`.
    pub fn cron(what: &str, text: &str, tz_key: &str, tz: &str) -> Result<Schedule, ScheduleError> {
        let cron = Cron::from_str(text.trim()).map_err(|e| ScheduleError {
            what: what.to_owned(),
            value: text.to_owned(),
            problem: format!(
                "is not a cron expression ({e}); write it like \"*/15 * * * *\" (minute hour day month weekday)"
            ),
        })?;
        let zone = Tz::from_str(tz.trim()).map_err(|_| ScheduleError {
            what: tz_key.to_owned(),
            value: tz.to_owned(),
            problem: "is not an IANA time zone; write it like \"UTC\" or \"Europe/Berlin\"".into(),
        })?;
        let schedule = Schedule::Cron {
            cron: Box::new(cron),
            tz: zone,
            text: text.trim().to_owned(),
        };
        // An expression that never fires (30 February) is an error now,
        // not a loop that sleeps forever.
        let now = Utc::now();
        schedule.next_start(now, now).ok_or_else(|| ScheduleError {
            what: what.to_owned(),
            value: text.to_owned(),
            problem: "never fires".into(),
        })?;
        Ok(schedule)
    }

    /// When the first cycle starts, for a loop starting at `now`: at once
    /// for an interval or when `immediately` (`--now`,
    /// `run.start_immediately`), else at the first cron time after `now`.
    /// `None` when a cron expression has no next time.
    pub fn first_start(&self, now: DateTime<Utc>, immediately: bool) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(_) => Some(now),
            Schedule::Cron { .. } if immediately => Some(now),
            Schedule::Cron { cron, tz, .. } => cron_after(cron, tz, now),
        }
    }

    /// When the next cycle starts, given when the last one started and
    /// ended: strictly after both; `None` when a cron expression has no
    /// next time.
    pub fn next_start(
        &self,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        // A clock stepped back during the cycle must not make the loop
        // repeat the start it just made.
        let after = started.max(ended);
        match self {
            Schedule::Every(d) => {
                let due = started.checked_add_signed(chrono::Duration::from_std(*d).ok()?)?;
                Some(due.max(after))
            }
            Schedule::Cron { cron, tz, .. } => cron_after(cron, tz, after),
        }
    }

    /// The schedule's nominal gap between cycles as of `now`: an
    /// interval's length; for a cron expression, the gap between its next
    /// two times (`None` when it has fewer than two left).
    pub fn nominal_interval(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Schedule::Every(d) => Some(*d),
            Schedule::Cron { cron, tz, .. } => {
                let next = cron_after(cron, tz, now)?;
                let after = cron_after(cron, tz, next)?;
                (after - next).to_std().ok()
            }
        }
    }

    /// Until when a cycle that started at `started` and succeeded at
    /// `ended` keeps the loop ready: the next start, plus one nominal
    /// interval (the gap from that start to the one after it), plus the
    /// time the cycle took (the next cycle needs as long to finish).
    /// Computed per cycle, so a weekday expression stays ready over the
    /// weekend and `0,5 * * * * *` through its long gap. `None`: no
    /// deadline (the schedule has no next time).
    pub fn ready_until(
        &self,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let next = self.next_start(started, ended)?;
        let gap = match self {
            Schedule::Every(d) => chrono::Duration::from_std(*d).ok()?,
            Schedule::Cron { .. } => self.next_start(next, next)? - next,
        };
        let took = (ended - started).max(chrono::Duration::zero());
        next.checked_add_signed(gap)?.checked_add_signed(took)
    }
}

/// The first instant strictly after `after` whose wall-clock time in `tz`
/// matches `cron` (see the module doc for folds and gaps).
///
/// croner walks naive (wall-clock) times; it is asked for them on a UTC
/// calendar, where no time is missing or repeated, and each match is
/// turned into the instants that show it. A fold makes naive order differ
/// from instant order by at most the shift, so the walk starts
/// `MAX_SHIFT_SECS` before the wall time of `after` and ends that far past
/// the wall time of the best instant found.
fn cron_after(cron: &Cron, tz: &Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let shift = chrono::Duration::seconds(MAX_SHIFT_SECS);
    let fixed = cron.determine_job_type() == JobType::FixedTime;
    // Cron times are whole seconds: the walk starts from one, so no
    // fraction of `after` is carried into the times it finds.
    let mut from: NaiveDateTime = after
        .with_timezone(tz)
        .naive_local()
        .with_nanosecond(0)?
        .checked_sub_signed(shift)?;
    let mut best: Option<DateTime<Utc>> = None;
    for _ in 0..MAX_MATCHES {
        let Ok(m) = cron.find_next_occurrence(&Utc.from_utc_datetime(&from), false) else {
            break;
        };
        let m = m.naive_utc();
        if let Some(b) = best {
            if m > b
                .with_timezone(tz)
                .naive_local()
                .checked_add_signed(shift)?
            {
                break;
            }
        }
        for t in instants(tz, m, fixed) {
            if t > after && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        }
        from = m;
    }
    best
}

/// The instants whose wall-clock time in `tz` is `m`: one; two in a fold
/// (only the first for a fixed-time expression); in a gap, the instant the
/// gap ends.
fn instants(tz: &Tz, m: NaiveDateTime, fixed: bool) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&m) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            if fixed {
                vec![a.min(b)]
            } else {
                vec![a.min(b), a.max(b)]
            }
        }
        LocalResult::None => gap_end(tz, m).into_iter().collect(),
    }
}

/// The first instant whose wall-clock time in `tz` is past `m` (a time in
/// a gap): a binary search over seconds, between instants whose wall time
/// is surely before and surely after (offsets stay within ±15 h).
fn gap_end(tz: &Tz, m: NaiveDateTime) -> Option<DateTime<Utc>> {
    let wall = |s: i64| DateTime::from_timestamp(s, 0).map(|u| u.with_timezone(tz).naive_local());
    let base = m.and_utc().timestamp();
    let (mut lo, mut hi) = (base - 15 * 3600, base + 15 * 3600);
    // wall(lo) <= m < wall(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid)? > m {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Schedule::Cron { text, tz, .. } => write!(f, "cron \"{text}\" ({tz})"),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn minutes(n: i64) -> chrono::Duration {
        chrono::Duration::minutes(n)
    }

    #[test]
    fn intervals_never_overlap_a_cycle() {
        let s = Schedule::every("run.every", "15m").unwrap();
        let t0 = utc(2026, 1, 1, 12, 0, 0);
        // A short cycle: the next starts 15 min after the last start.
        let next = s
            .next_start(t0, t0 + chrono::Duration::seconds(30))
            .unwrap();
        assert_eq!(next, t0 + minutes(15));
        // An overrun: the next starts when the last ended, not before.
        let end = t0 + minutes(20);
        assert_eq!(s.next_start(t0, end).unwrap(), end);
        // An interval's first cycle starts at once.
        assert_eq!(s.first_start(t0, false), Some(t0));
    }

    #[test]
    fn cron_is_evaluated_in_its_time_zone() {
        let s = Schedule::cron("run.cron", "0 9 * * *", "run.timezone", "Europe/Berlin").unwrap();
        let t0 = utc(2026, 1, 1, 12, 0, 0);
        // 09:00 in Berlin in winter is 08:00 UTC, the next day.
        assert_eq!(s.next_start(t0, t0).unwrap(), utc(2026, 1, 2, 8, 0, 0));
    }

    /// Finding #6: started in the repeated hour of October's change in
    /// Berlin (02:00–03:00 is seen at +02:00, then again at +01:00), the
    /// next start was the first pass's 02:30, an hour in the past.
    #[test]
    fn the_repeated_hour_never_gives_a_start_in_the_past() {
        let s =
            Schedule::cron("run.cron", "*/15 * * * *", "run.timezone", "Europe/Berlin").unwrap();
        // 02:20 +01:00 (second pass) = 01:20 UTC; the cycle took 5 s.
        let started = utc(2026, 10, 25, 1, 20, 0);
        let ended = started + chrono::Duration::seconds(5);
        // 02:30 +01:00 = 01:30 UTC, not 02:30 +02:00 = 00:30 UTC.
        assert_eq!(
            s.next_start(started, ended),
            Some(utc(2026, 10, 25, 1, 30, 0))
        );
        // In the first pass, 02:45 +02:00 (00:45 UTC) is followed by 02:00
        // +01:00 (01:00 UTC), not by 03:00 +01:00 an hour late.
        let started = utc(2026, 10, 25, 0, 45, 0);
        assert_eq!(
            s.next_start(started, started + minutes(1)),
            Some(utc(2026, 10, 25, 1, 0, 0))
        );
        // A fixed-time expression runs once in the repeated hour.
        let s = Schedule::cron("run.cron", "30 2 * * *", "run.timezone", "Europe/Berlin").unwrap();
        let first = utc(2026, 10, 25, 0, 30, 0);
        assert_eq!(
            s.next_start(first - minutes(60), first - minutes(59)),
            Some(first)
        );
        assert_eq!(
            s.next_start(first, first + minutes(1)),
            Some(utc(2026, 10, 26, 1, 30, 0))
        );
    }

    #[test]
    fn a_time_the_clock_skips_fires_when_the_gap_ends() {
        // Berlin, 29 March 2026: 02:00 +01:00 jumps to 03:00 +02:00 (01:00 UTC).
        let s = Schedule::cron("run.cron", "30 2 * * *", "run.timezone", "Europe/Berlin").unwrap();
        let t = utc(2026, 3, 28, 12, 0, 0);
        assert_eq!(s.next_start(t, t), Some(utc(2026, 3, 29, 1, 0, 0)));
        // Lord Howe, 4 October 2026: 02:00 +10:30 jumps to 02:30 +11:00.
        let s = Schedule::cron(
            "run.cron",
            "15 2 * * *",
            "run.timezone",
            "Australia/Lord_Howe",
        )
        .unwrap();
        let t = utc(2026, 10, 3, 0, 0, 0);
        assert_eq!(s.next_start(t, t), Some(utc(2026, 10, 3, 15, 30, 0)));
    }

    #[test]
    fn the_nominal_interval_is_the_interval_or_the_gap_between_cron_times() {
        let every = Schedule::every("run.every", "15m").unwrap();
        assert_eq!(
            every.nominal_interval(utc(2026, 1, 1, 0, 0, 0)),
            Some(Duration::from_secs(900))
        );
        // Weekdays at 09:00 and 17:00: on a Monday at noon the next two
        // times are 17:00 and Tuesday 09:00.
        let cron = Schedule::cron("run.cron", "0 0 9,17 * * 1-5", "run.timezone", "UTC").unwrap();
        let monday_noon = utc(2026, 1, 5, 12, 0, 0);
        assert_eq!(
            cron.nominal_interval(monday_noon),
            Some(Duration::from_secs(16 * 3600))
        );
    }

    /// Finding #13: the first cycle of a cron schedule waits for its first
    /// time unless asked to start at once.
    #[test]
    fn the_first_cron_cycle_waits_for_the_first_time() {
        let s = Schedule::cron("run.cron", "0 9 * * *", "run.timezone", "UTC").unwrap();
        let now = utc(2026, 1, 1, 12, 0, 0);
        assert_eq!(s.first_start(now, false), Some(utc(2026, 1, 2, 9, 0, 0)));
        assert_eq!(s.first_start(now, true), Some(now));
    }

    /// Finding #13: readiness lasts per cycle until the next start plus the
    /// gap after it plus the cycle's own time, so an uneven expression or a
    /// weekday one stays ready while every cycle succeeds.
    #[test]
    fn a_success_stays_ready_through_the_schedules_own_gaps() {
        let s = Schedule::cron("run.cron", "0,5 * * * * *", "run.timezone", "UTC").unwrap();
        // The :05 cycle took 1 s: next at :00 of the next minute, the gap
        // after it 5 s, plus the 1 s.
        let started = utc(2026, 1, 1, 12, 0, 5);
        assert_eq!(
            s.ready_until(started, started + chrono::Duration::seconds(1)),
            Some(utc(2026, 1, 1, 12, 1, 6))
        );
        // The :00 cycle: next at :05, then a 55 s gap.
        let started = utc(2026, 1, 1, 12, 1, 0);
        assert_eq!(
            s.ready_until(started, started + chrono::Duration::seconds(1)),
            Some(utc(2026, 1, 1, 12, 2, 1))
        );
        // Weekdays at 09:00: a Friday success stays ready until Tuesday's
        // 09:00 (+ the cycle's time), over the whole weekend.
        let s = Schedule::cron("run.cron", "0 9 * * 1-5", "run.timezone", "UTC").unwrap();
        let friday = utc(2026, 1, 2, 9, 0, 0);
        assert_eq!(
            s.ready_until(friday, friday + minutes(2)),
            Some(utc(2026, 1, 6, 9, 2, 0))
        );
        let s = Schedule::every("run.every", "15m").unwrap();
        let t = utc(2026, 1, 1, 12, 0, 0);
        assert_eq!(s.ready_until(t, t + minutes(1)), Some(t + minutes(31)));
    }

    const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"];

    /// A fixed-time expression fires exactly once on every local day of a
    /// year, DST days included, in each zone.
    #[test]
    fn a_fixed_time_fires_once_a_day_all_year() {
        for zone in ZONES {
            let s = Schedule::cron("run.cron", "30 2 * * *", "run.timezone", zone).unwrap();
            let tz = Tz::from_str(zone).unwrap();
            let end = tz
                .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .unwrap()
                .with_timezone(&Utc);
            let mut t = s
                .first_start(
                    tz.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                        .unwrap()
                        .with_timezone(&Utc),
                    false,
                )
                .unwrap();
            let mut days = std::collections::BTreeSet::new();
            let mut starts = 0;
            while t < end {
                starts += 1;
                days.insert(t.with_timezone(&tz).date_naive());
                let next = s.next_start(t, t + minutes(3)).unwrap();
                assert!(next > t, "{zone}: {next} after {t}");
                t = next;
            }
            assert_eq!((starts, days.len()), (365, 365), "{zone}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

        /// Every 15-minute start of 2026 in each of three zones (one with a
        /// half-hour shift), each cycle taking a generated time from 0 to
        /// 40 min (to the millisecond): the next start is strictly after the start and the end,
        /// at most one interval after the end, and exactly one interval
        /// after the start when the cycle was shorter than that (so the
        /// starts a loop makes only increase, with no gap and no repeat).
        #[test]
        fn every_quarter_hour_start_of_a_year(
            took in prop::collection::vec(0i64..=2_400_000, 1..50),
        ) {
            for zone in ZONES {
                let s = Schedule::cron("run.cron", "*/15 * * * *", "run.timezone", zone).unwrap();
                let interval = minutes(15);
                let mut start = utc(2026, 1, 1, 0, 0, 0);
                let end = utc(2027, 1, 1, 0, 0, 0);
                let mut i = 0usize;
                while start < end {
                    let ended = start + chrono::Duration::milliseconds(took[i % took.len()]);
                    let next = s.next_start(start, ended).unwrap();
                    prop_assert!(next > start && next > ended, "{zone}: {start} ended {ended} → {next}");
                    prop_assert!(next - ended <= interval, "{zone}: {start} ended {ended} → {next}, late");
                    prop_assert_eq!(next.timestamp_subsec_nanos(), 0, "{}: {} is not a cron time", zone, next);
                    if ended - start < interval {
                        prop_assert_eq!(next, start + interval, "{}: {} ended {}", zone, start, ended);
                    }
                    start += interval;
                    i += 1;
                }
            }
        }
    }

    #[test]
    fn bad_schedules_name_the_key_and_the_fix() {
        let e = Schedule::every("--every", "soon").unwrap_err().to_string();
        assert!(e.contains("--every") && e.contains("15m"), "{e}");
        let e = Schedule::every("run.every", "10ms")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than 1 s"), "{e}");
        let e = Schedule::cron("run.cron", "61 * * * *", "run.timezone", "UTC")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run.cron") && e.contains("cron expression"),
            "{e}"
        );
        let e = Schedule::cron("run.cron", "* * * * *", "run.timezone", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.timezone") && e.contains("IANA"), "{e}");
        let e = Schedule::cron("run.cron", "0 0 30 2 *", "run.timezone", "UTC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never fires"), "{e}");
    }
}
