//! The process's own numbers under their standard names
//! (`process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_cpu_seconds_total`, `process_start_time_seconds`), read from
//! Linux's `/proc/self` at each scrape, as the official clients do.
//!
//! What must stay true: a number that cannot be read (no `/proc`, a field
//! the kernel does not have) is left out of the exposition, never
//! written as 0: a missing series alerts as missing, a 0 lies.

use std::path::Path;

use nix::unistd::{SysconfVar, sysconf};

/// What one scrape read; each is `None` when it could not be.
#[derive(Debug, Default, PartialEq)]
pub struct Process {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub cpu_seconds: Option<f64>,
    /// Unix time.
    pub start_time_seconds: Option<f64>,
}

impl Process {
    /// Reads this process's numbers now.
    pub fn read() -> Process {
        read_from(Path::new("/proc"))
    }
}

fn read_from(proc: &Path) -> Process {
    let read = |p: &str| std::fs::read_to_string(proc.join(p)).ok();
    let ticks = positive(sysconf(SysconfVar::CLK_TCK));
    let page = positive(sysconf(SysconfVar::PAGE_SIZE));
    let stat = read("self/stat").as_deref().and_then(Stat::parse);
    let boot = read("stat").as_deref().and_then(boot_time);
    Process {
        resident_bytes: stat.as_ref().zip(page).map(|(s, page)| s.rss_pages * page),
        // The listing's own descriptor is counted too, as the official
        // clients count it.
        open_fds: std::fs::read_dir(proc.join("self/fd")).ok().map(|dir| dir.count() as u64),
        max_fds: read("self/limits").as_deref().and_then(max_open_files),
        cpu_seconds: stat.as_ref().zip(ticks).map(|(s, t)| (s.utime + s.stime) as f64 / t as f64),
        start_time_seconds: stat.zip(ticks).zip(boot).map(|((s, t), boot)| boot as f64 + s.starttime as f64 / t as f64),
    }
}

fn positive(value: nix::Result<Option<std::ffi::c_long>>) -> Option<u64> {
    value.ok().flatten().and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0)
}

/// The fields of `/proc/self/stat` that are wanted (proc(5)).
#[derive(Debug, PartialEq)]
struct Stat {
    /// Clock ticks in user and kernel mode.
    utime: u64,
    stime: u64,
    /// Clock ticks after boot at which the process started.
    starttime: u64,
    rss_pages: u64,
}

impl Stat {
    /// The second field, the command name, is in parentheses and may hold
    /// spaces and parentheses itself: the fields are counted from the last
    /// `)`.
    fn parse(text: &str) -> Option<Stat> {
        let after = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `fields[0]` is field 3 (state).
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat { utime: field(14)?, stime: field(15)?, starttime: field(22)?, rss_pages: field(24)? })
    }
}

/// `btime` of `/proc/stat`: the boot time, in Unix seconds.
fn boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`; `None` when
/// unlimited.
fn max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (portico (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 \
                    98765 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(Stat::parse(text), Some(Stat { utime: 250, stime: 50, starttime: 98765, rss_pages: 2048 }));
        assert_eq!(Stat::parse("4242 (portico) S 1"), None);
    }

    #[test]
    fn limits_and_boot_time() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63432                63432                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(max_open_files("Max open files            unlimited            unlimited            files\n"), None);
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1767225600\nprocesses 9\n"), Some(1_767_225_600));
    }

    #[test]
    fn this_process_reads_on_linux_and_nothing_is_made_up_elsewhere() {
        let me = Process::read();
        if Path::new("/proc/self/stat").exists() {
            assert!(me.resident_bytes.is_some_and(|b| b > 0), "{me:?}");
            assert!(me.open_fds.is_some_and(|n| n >= 3), "{me:?}");
            assert!(me.cpu_seconds.is_some(), "{me:?}");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            let started = me.start_time_seconds.unwrap();
            assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0, "{me:?}");
        }
        let nowhere = read_from(Path::new("/nonexistent"));
        assert_eq!((nowhere.resident_bytes, nowhere.open_fds, nowhere.max_fds), (None, None, None));
        assert_eq!((nowhere.cpu_seconds, nowhere.start_time_seconds), (None, None));
    }
}
