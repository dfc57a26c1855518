//! Short waits for SQLite's write lock.
//!
//! SQLite has one write lock per database. A writer that finds it taken calls the
//! connection's busy handler, and the one `PRAGMA busy_timeout` installs sleeps 1, 2, 5, 10,
//! 15, 20, 25, 25, 25, 50, 50 and then 100 ms between tries, however short the holder's hold.
//! Under sixteen concurrent writers most of a request's tail was those sleeps: forgot-password
//! p99 25-35 ms and maxima of 180 ms at a 2 ms median (issue 12, docs/BENCHMARKS.md), while a
//! write holds the lock for well under a millisecond.
//!
//! This handler tries again after 50 µs, doubling up to 1 ms, and gives up after 10 s (as the
//! timeout did). No crate offers a busy handler through sqlx's `Any` driver, which hides the
//! connection handle, so it is installed by hand: an auto-extension (SQLite runs it on every
//! connection it opens in this process) registers a SQL function, and each connection calls
//! that function once it is set up (sqlx sets its own busy timeout after opening, which would
//! replace a handler installed any earlier).

use libsqlite3_sys as ffi;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Once;
use std::time::Duration;

/// The statement that installs the handler on the connection that runs it.
pub const INSTALL: &str = "SELECT doorman_short_busy_waits()";

/// The shortest and the longest pause between two tries.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
const LONGEST_PAUSE: Duration = Duration::from_millis(1);
/// Tries before giving up: 10 s of 1 ms pauses, as the busy timeout this replaces.
const MAX_TRIES: c_int = 10_000;

/// The pause before try `count + 1`.
fn pause(count: c_int) -> Duration {
    let doublings = count.clamp(0, 16) as u32;
    FIRST_PAUSE.saturating_mul(1 << doublings).min(LONGEST_PAUSE)
}

/// Makes [`INSTALL`] available on every SQLite connection this process opens from now on.
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `register_function` has the signature SQLite calls entry points with, and
        // stays valid for the life of the process.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(register_function)) };
        if rc != ffi::SQLITE_OK {
            tracing::warn!(rc, "could not register SQLite's short busy waits; writers wait with the busy timeout");
        }
    });
}

/// SQLite's busy handler: whether to try again.
unsafe extern "C" fn busy_handler(_: *mut c_void, count: c_int) -> c_int {
    if count >= MAX_TRIES {
        return 0;
    }
    // Runs on the connection's own thread (sqlx gives each SQLite connection one), never on
    // the async runtime's.
    std::thread::sleep(pause(count));
    1
}

/// `doorman_short_busy_waits()`: installs [`busy_handler`] on the calling connection.
unsafe extern "C" fn install(context: *mut ffi::sqlite3_context, _: c_int, _: *mut *mut ffi::sqlite3_value) {
    // SAFETY: SQLite passes a live context; its database handle is valid for this call, and
    // replacing a connection's busy handler from a function on that connection is allowed.
    unsafe {
        let db = ffi::sqlite3_context_db_handle(context);
        let rc = ffi::sqlite3_busy_handler(db, Some(busy_handler), std::ptr::null_mut());
        ffi::sqlite3_result_int(context, rc);
    }
}

/// The auto-extension's entry point: registers the function on a new connection.
unsafe extern "C" fn register_function(db: *mut ffi::sqlite3, _: *mut *mut c_char, _: *const ffi::sqlite3_api_routines) -> c_int {
    // SAFETY: SQLite passes the connection being opened; the name is a NUL-terminated static.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"doorman_short_busy_waits".as_ptr(),
            0,
            ffi::SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(install),
            None,
            None,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_short_and_stop_growing_at_a_millisecond() {
        assert_eq!(pause(0), Duration::from_micros(50));
        assert_eq!(pause(1), Duration::from_micros(100));
        assert_eq!(pause(4), Duration::from_micros(800));
        assert_eq!(pause(5), LONGEST_PAUSE);
        assert_eq!(pause(9_999), LONGEST_PAUSE);
    }
}
