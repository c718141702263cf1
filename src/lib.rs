//! trunkd: a SIP trunk edge daemon.
//!
//! ```text
//!  config files ──► config::load ──► Config ──► control::Control (sans-IO) ──► events
//!        ▲               (validate all, keep old on error)     │            │
//!   inotify / SIGHUP                                           │            ▼
//!        │                       io:: (tokio shell) ◄──────────┘   status log, sd_notify
//!        └──────────── sockets, timers, signals, file watch
//! ```
//! The control path owns all state and decides; it is driven by `now` and inputs passed in, so
//! every timer is testable on a virtual clock. The `io` shell only moves bytes, events and
//! time between the control path and the operating system.

pub mod call;
pub mod config;
pub mod control;
pub mod inbound;
pub mod io;
pub mod sip;
pub mod status;
pub mod status_file;
#[cfg(test)]
mod testing;
pub mod trunk;
pub mod verify;
