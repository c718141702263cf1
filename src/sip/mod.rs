//! SIP wire types. For now only the URI and host types the config layer validates; the
//! zero-copy scanner, message builder, digest and transactions join this module later.

pub mod uri;

pub use uri::{Host, Scheme, SipUri};
