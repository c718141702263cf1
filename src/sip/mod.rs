//! SIP wire types and machines, sans IO: URIs and hosts, and the RFC 3261 transaction
//! timers. The hot-path scanner and digest authentication join this module next.

pub mod transaction;
pub mod uri;

pub use uri::{Host, Scheme, SipUri};
