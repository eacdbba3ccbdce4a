//! Who holds a lease, and the SQLite journal's clock.
//!
//! A lease names its holder twice: `host:pid` for people, and an
//! *instance* (`boot id/PID namespace/pid/start time`) that tells, without
//! doubt, whether that process is gone. Two containers with the same
//! `hostname:` share neither a PID namespace nor, often, a boot id, and a
//! pid is reused after its process ends; so a holder counts as gone only
//! when its instance was written on this boot, in this PID namespace, and
//! its pid now runs nothing or something started at another time. In
//! every other case the lease's expiry decides. (Linux only, through
//! `/proc`; elsewhere the expiry always decides.)

/// This host's name, as leases and cycles show it.
pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// This boot's id (Linux: `/proc/sys/kernel/random/boot_id`); `unknown`
/// where there is none, which never matches another reading's instance.
pub(crate) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The boot clock in milliseconds: monotonic, counts suspend, the same
/// for every process of the host. (Non-Linux: the wall clock.)
pub(crate) fn boot_clock_ms() -> i64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        t.tv_sec.saturating_mul(1000) + t.tv_nsec / 1_000_000
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// The PID namespace of `pid` (`pid:[4026531836]`), if it can be read.
fn pid_namespace(pid: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// When `pid` started, in clock ticks since boot (`/proc/PID/stat` field
/// 22), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's instance: `boot/namespace/pid/start`.
pub(crate) fn instance() -> String {
    let pid = std::process::id();
    format!(
        "{}/{}/{}/{}",
        boot_id(),
        pid_namespace("self").unwrap_or_else(|| "unknown".into()),
        pid,
        start_time(pid).map_or_else(|| "unknown".into(), |t| t.to_string())
    )
}

/// Whether the process `instance` names is certainly gone: written on
/// this boot, in this PID namespace, by a pid that now runs nothing or a
/// process started at another time. Anything unreadable is "not certain".
pub(crate) fn certainly_gone(instance: &str) -> bool {
    let parts: Vec<&str> = instance.split('/').collect();
    let [boot, ns, pid, start] = parts[..] else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if boot == "unknown" || boot != boot_id() || pid == std::process::id() {
        return false;
    }
    match pid_namespace("self") {
        Some(mine) if mine == ns => {}
        _ => return false,
    }
    match start_time(pid) {
        None => true,
        Some(now) => start.parse::<u64>().is_ok_and(|then| then != now),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone_and_a_dead_pid_is() {
        let me = instance();
        assert!(!certainly_gone(&me), "{me}");
        let parts: Vec<&str> = me.split('/').collect();
        // A pid that runs nothing, in our namespace and boot: gone.
        let dead = format!("{}/{}/{}/{}", parts[0], parts[1], 99_999_999, parts[3]);
        assert!(certainly_gone(&dead));
        // pid 1 runs, but started at another time than we say: reused.
        let reused = format!("{}/{}/1/{}", parts[0], parts[1], u64::MAX);
        assert!(certainly_gone(&reused));
    }

    #[test]
    fn another_namespace_or_boot_is_never_certain() {
        let me = instance();
        let parts: Vec<&str> = me.split('/').collect();
        // The same host name and a dead pid, but in another PID namespace
        // (a container with a fixed `hostname:`): not certain.
        let other_ns = format!("{}/pid:[1]/{}/{}", parts[0], 99_999_999, parts[3]);
        assert!(!certainly_gone(&other_ns));
        let other_boot = format!("another-boot/{}/{}/{}", parts[1], 99_999_999, parts[3]);
        assert!(!certainly_gone(&other_boot));
        assert!(!certainly_gone("h:1"));
        assert!(!certainly_gone(""));
    }
}
