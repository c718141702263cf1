//! trunkd: a SIP trunk edge daemon.
//!
//! ```text
//!  config files ──► config::load ──► Config ──► control::Control (sans IO) ──► events
//!        ▲               (validate all, keep old on error)      ▲   │            │
//!   inotify / SIGHUP                                            │   │            ▼
//!        │                io:: (tokio shell) ───────────────────┘   │   status log, sd_notify
//!        └──────────── sockets, timers, signals, file watch ◄───────┘
//! ```
//! Two paths. Every datagram or stream frame first meets the **hot path**
//! ([`inbound`]): a lean scan and an admission decision against an immutable snapshot,
//! on the thread that read it, with no lock and no allocation; rejections and OPTIONS
//! are answered there. What it does not answer (responses, requests inside calls, admitted
//! INVITEs with their claimed channel) goes to the **control path** (`control`): one
//! `control::Control` owns every trunk's registration and keepalive (`trunk`), the
//! calls (`call`) and the shutdown, and is driven by `now` and inputs passed in, so
//! every timer is testable on a virtual clock. The shell ([`io`]) only moves bytes,
//! events and time: a UDP listener thread runs the control path on what it read itself
//! (under the control path's lock, `io::hot_path`); the control loop ([`io::serve`])
//! runs its timers, reloads, signals, DNS and the TCP/TLS connections. [`sip`] holds the
//! sans-IO building blocks (scanner, transactions, digest), [`config`] the validated
//! config and its diff, [`verify`] the `trunkd verify` checks.

#![warn(unreachable_pub)]

pub(crate) mod call;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod control;
pub mod inbound;
pub mod io;
pub mod sip;
pub mod status;
pub mod status_file;
#[cfg(test)]
mod testing;
pub(crate) mod trunk;
pub mod verify;
