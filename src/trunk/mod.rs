//! Per-trunk state machines, sans IO. A singular module is one trunk's machine, the
//! plural one every trunk's set of them: [`registration`] / [`registrations`] (REGISTER),
//! [`keepalive`] / [`keepalives`] (OPTIONS pings). [`next_hop`] is the RFC 3263 lookup
//! they ask the shell for; `deadlines` is the sets' shared timer heap. Each is driven by
//! `now` and parsed inputs and emits bytes to send, deadlines and events; the shell does
//! the sockets, DNS and clocks. Admission is the hot path's ([`crate::inbound`]), calls
//! are [`crate::call`]'s.

mod deadlines;
pub(crate) mod histogram;
pub(crate) mod keepalive;
pub(crate) mod keepalives;
pub(crate) mod next_hop;
pub(crate) mod random;
pub(crate) mod registration;
pub(crate) mod registrations;
