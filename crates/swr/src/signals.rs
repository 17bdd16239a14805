//! The signals swr acts on, shared by `swr run` and `swr tui`.
//!
//! SIGHUP is special: `nohup swr run …` starts swr with it ignored so that closing the SSH
//! session does not end the run. Installing a handler would replace that inherited "ignore",
//! so swr listens to SIGHUP only when it was not ignored at start.

use tokio::signal::unix::Signal;

/// Whether SIGHUP was ignored when swr started (`nohup`). When `/proc` cannot tell, swr
/// behaves as without nohup: a hang-up stops the run gracefully, which loses nothing.
pub fn hangup_ignored() -> bool {
    swr_core::procinfo::signal_ignored(nix::sys::signal::Signal::SIGHUP as i32) == Some(true)
}

/// A SIGHUP listener, or `None` when SIGHUP was ignored at start and must stay ignored.
pub fn hangup() -> std::io::Result<Option<Signal>> {
    if hangup_ignored() {
        return Ok(None);
    }
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map(Some)
}

/// The next delivery of `signal`; never, when there is no listener.
pub async fn recv(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
