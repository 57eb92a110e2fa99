//! This process's own figures from `/proc` (Linux): resident and virtual memory, CPU time,
//! open file descriptors and their limit, threads and start time. They are the standard
//! Prometheus process metrics (`process_*`), and the JSON metrics' resident memory.
//! Elsewhere every figure reads as absent.

use super::exposition::{family, sample};

/// What `/proc/self` says of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub threads: u64,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Reads the figures; `None` where `/proc` is not there to read.
pub fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields after it are
    // counted from its closing parenthesis.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = clock_ticks_per_second();
    let page = page_size();
    let boot = boot_time_seconds().unwrap_or(0);
    Some(Figures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        threads: field(20)?,
        start_time_seconds: boot as f64 + field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: max_open_files(),
    })
}

/// The standard process metrics in the Prometheus text format.
pub fn render(out: &mut String) {
    let Some(f) = read() else {
        return;
    };
    let mut metrics = vec![
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            f.resident_bytes.to_string(),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            f.virtual_bytes.to_string(),
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            f.cpu_seconds.to_string(),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            f.open_fds.to_string(),
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            f.threads.to_string(),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            f.start_time_seconds.to_string(),
        ),
    ];
    if let Some(max) = f.max_fds {
        metrics.push((
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max.to_string(),
        ));
    }
    for (name, kind, help, value) in metrics {
        family(out, name, kind, help);
        sample(out, name, "", value);
    }
}

/// Hands the heap's free pages back to the system. Start-up builds and drops a lot (the
/// OpenAPI document, the router, the configuration's layers), and glibc keeps what was
/// freed in the middle of its heap: called once a mode is ready, this takes about 1.5 MiB
/// off the idle resident set of `serve`. A no-op where the allocator is not glibc's.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

fn boot_time_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit on open files, `None` when unlimited or unreadable.
fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_describe_this_process() {
        let before = read().expect("/proc is readable on Linux");
        let files: Vec<std::fs::File> = (0..5)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let after = read().unwrap();
        drop(files);

        assert!(before.resident_bytes > 1024 * 1024, "{before:?}");
        assert!(before.virtual_bytes >= before.resident_bytes, "{before:?}");
        assert!(before.threads >= 1, "{before:?}");
        assert!(
            after.open_fds >= before.open_fds + 5,
            "{before:?} {after:?}"
        );
        assert!(before.max_fds.is_some_and(|m| m >= before.open_fds));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            before.start_time_seconds <= now && before.start_time_seconds > now - 3600.0,
            "{before:?}"
        );
    }

    #[test]
    fn the_text_names_each_metric_once_with_its_type() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert_eq!(out.matches(&format!("# TYPE {name} ")).count(), 1, "{out}");
            assert!(
                out.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{out}"
            );
        }
    }
}
