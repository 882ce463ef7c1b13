//! Memory figures of this process from `/proc/self/status` (Linux), shared by the RSS
//! benchmark and the mock's load test.

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`…), in KiB; 0 when unreadable.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
