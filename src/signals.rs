//! SIGINT and SIGTERM end a measurement, not the process: the command stops
//! reading or probing and prints the report of what it has, with the
//! verdict's exit code.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Exit status of a second signal: the shell's convention for SIGINT.
const EXIT_SECOND_SIGNAL: i32 = 130;

/// The flag SIGINT and SIGTERM set from now on. A second signal, once the
/// flag is set, ends the process at once (exit 130): the first one asked
/// for the report, the second says not to wait for it.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // In this order: the shutdown action looks at the flag before the
        // second action sets it. A failure leaves the default action (the
        // process ends at the signal, as before), which is no reason to fail.
        let _ = flag::register_conditional_shutdown(sig, EXIT_SECOND_SIGNAL, Arc::clone(&stop));
        let _ = flag::register(sig, Arc::clone(&stop));
    }
    stop
}
