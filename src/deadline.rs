//! When the current invocation's script must stop (SPEC 6), per thread: armed by
//! the engine around each handler call; checked by its stop points (Lua's
//! instruction hook, Rhai's progress callback) and by stdlib functions that wait
//! (`time.sleep`), which never wait past it. Per thread, because each engine runs
//! its scripts on one thread.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::context::remaining_time_ms;

/// How long before Lambda's deadline a script is stopped, so that the
/// `Runtime.Timeout` answer reaches the Runtime API in time.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

thread_local! {
    /// The stop of the invocation this thread runs (`None`: no deadline known).
    static STOP: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether the stop was reached during the invocation.
    static EXPIRED: Cell<bool> = const { Cell::new(false) };
}

/// The instant at which to stop a script whose deadline is `deadline_ms`
/// (ms since the epoch).
pub fn stop_time(deadline_ms: u64) -> Instant {
    let left = Duration::from_millis(remaining_time_ms(deadline_ms));
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

/// Starts an invocation that must stop at `stop` (`None`: no deadline known).
pub fn arm(stop: Option<Instant>) {
    STOP.set(stop);
    EXPIRED.set(false);
}

/// Ends the invocation; true if its stop was reached.
pub fn disarm() -> bool {
    STOP.set(None);
    EXPIRED.replace(false)
}

/// Whether the script must stop now: its stop has passed (or was reached earlier).
pub fn check() -> bool {
    if EXPIRED.get() {
        return true;
    }
    let passed = STOP.get().is_some_and(|stop| Instant::now() >= stop);
    EXPIRED.set(passed);
    passed
}

/// How long until the stop (`None`: no deadline known); zero once it has passed.
pub fn time_left() -> Option<Duration> {
    STOP.get()
        .map(|stop| stop.saturating_duration_since(Instant::now()))
}

/// Marks the stop as reached: a wait that the stop cut short (an HTTP call) ends
/// the invocation as `Runtime.Timeout`, even if the script catches its error.
pub fn expire() {
    EXPIRED.set(true);
}

/// Waits for `wanted`, or until the stop if that comes first; false when the
/// wait was cut short by the stop (which then counts as reached).
pub fn wait(wanted: Duration) -> bool {
    match time_left() {
        Some(left) if left < wanted => {
            std::thread::sleep(left);
            expire();
            false
        }
        _ => {
            std::thread::sleep(wanted);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_stops_at_the_stop_and_marks_it_reached() {
        arm(Some(Instant::now() + Duration::from_millis(20)));
        assert!(!check());
        assert!(wait(Duration::ZERO));
        let started = Instant::now();
        assert!(!wait(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(check());
        assert!(disarm());
        assert!(!check(), "disarmed: nothing to stop");
        arm(None);
        assert!(wait(Duration::from_millis(1)));
        assert!(!disarm());
    }
}
