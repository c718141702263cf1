//! SIP wire types and machines, sans IO: URIs and hosts, digest authentication and the
//! RFC 3261 transaction timers. The hot-path scanner joins this module next.

pub mod digest;
pub mod transaction;
pub mod uri;

pub use uri::{Host, Scheme, SipUri};
