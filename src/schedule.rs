//! When `rebalancer run` starts its cycles: every fixed interval
//! (`run.every`, `--every 15m`) or at the times of a cron expression
//! (`run.cron`, `--cron "*/15 * * * *"`) evaluated in `run.timezone`.
//!
//! A cycle that overruns is never overlapped: the next start is computed
//! from the end of the cycle (an interval restarts from the cycle's start
//! if it has not passed yet, else at once; a cron schedule takes its next
//! time after the end).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;
use std::time::Duration;

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
        schedule
            .next_start(Utc::now(), Utc::now())
            .ok_or_else(|| ScheduleError {
                what: what.to_owned(),
                value: text.to_owned(),
                problem: "never fires".into(),
            })?;
        Ok(schedule)
    }

    /// When the next cycle starts, given when the last one started and
    /// ended; `None` when a cron expression has no next time.
    pub fn next_start(
        &self,
        started: DateTime<Utc>,
        ended: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let due = started + chrono::Duration::from_std(*d).ok()?;
                Some(due.max(ended))
            }
            Schedule::Cron { cron, tz, .. } => cron
                .find_next_occurrence(&ended.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The interval a healthy loop keeps (for readiness): the interval, or
    /// the gap between the next two cron times.
    pub fn nominal_interval(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron { .. } => {
                let now = Utc::now();
                let a = self.next_start(now, now);
                let b = a.and_then(|a| self.next_start(a, a));
                match (a, b) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
                    _ => Duration::from_secs(60),
                }
            }
        }
    }
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

    #[test]
    fn intervals_never_overlap_a_cycle() {
        let s = Schedule::every("run.every", "15m").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        // A short cycle: the next starts 15 min after the last start.
        let next = s
            .next_start(t0, t0 + chrono::Duration::seconds(30))
            .unwrap();
        assert_eq!(next, t0 + chrono::Duration::minutes(15));
        // An overrun: the next starts when the last ended, not before.
        let end = t0 + chrono::Duration::minutes(20);
        assert_eq!(s.next_start(t0, end).unwrap(), end);
    }

    #[test]
    fn cron_is_evaluated_in_its_time_zone() {
        let s = Schedule::cron("run.cron", "0 9 * * *", "run.timezone", "Europe/Berlin").unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        // 09:00 in Berlin in winter is 08:00 UTC, the next day.
        assert_eq!(
            s.next_start(t0, t0).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 2, 8, 0, 0).unwrap()
        );
        assert_eq!(s.nominal_interval(), Duration::from_secs(86_400));
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
