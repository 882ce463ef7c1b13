//! What the end-to-end benches share: the CPU time this process has used. The servers run
//! in child processes (`gcm_mock::baseline::ChildServer`), so it is the client's alone.

use std::time::Duration;

/// CPU time used by this process so far, all threads, user and system.
pub(crate) fn cpu_time() -> Duration {
    let spent = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(u64::try_from(spent.tv_sec).unwrap_or(0), u32::try_from(spent.tv_nsec).unwrap_or(0))
}

/// The CPU time `run` costs this process (for criterion's `iter_custom`: the rows of a
/// `*-client-cpu` group report CPU time, not wall time).
pub(crate) fn cpu_of(run: impl FnOnce()) -> Duration {
    let before = cpu_time();
    run();
    cpu_time().saturating_sub(before)
}
