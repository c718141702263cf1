//! Per-trunk state machines, sans IO: registration now; keepalive, admission and calls
//! follow. Each is driven by `now` and parsed inputs and emits bytes to send, deadlines
//! and events; the shell does the sockets, DNS and clocks.

pub mod keepalive;
pub mod keepalives;
pub mod next_hop;
pub mod random;
pub mod registration;
pub mod registrations;
