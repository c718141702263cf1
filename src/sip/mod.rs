//! SIP: URIs and hosts, digest authentication, the hot-path scanner and the RFC 3261
//! transaction timers — all sans IO.

mod classify;
pub mod digest;
pub(crate) mod invite;
pub(crate) mod response;
pub mod scan;
pub(crate) mod transaction;
mod transmit;
pub(crate) mod uri;

pub use transmit::Transmit;
pub use uri::{Host, Scheme, SipUri};
