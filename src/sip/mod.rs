//! SIP: URIs and hosts, digest authentication, the hot-path scanner and the RFC 3261
//! transaction timers — all sans IO.

mod classify;
pub mod digest;
pub mod invite;
pub mod response;
pub mod scan;
pub mod transaction;
mod transmit;
pub mod uri;

pub use transmit::Transmit;
pub use uri::{Host, Scheme, SipUri};
