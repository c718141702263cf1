//! Zero-copy SIP message scanner (RFC 3261 §7, §20, §25) and the stream framer that cuts
//! TCP/TLS byte streams into messages for it (RFC 3261 §18.3, RFC 5626 §3.5.1).
//!
//! Every inbound datagram or stream frame passes through here before anything else looks at
//! it, floods from scanners included. So this module:
//! - borrows: the start line, header names, raw header values and the body are slices of the
//!   input, and the caller supplies the header storage (`&mut [Header]`), as in httparse;
//! - never allocates (no `Vec`, `String` or `Box` outside the tests) and never panics, on any
//!   input;
//! - bounds its work: the message is capped at [`MAX_MESSAGE_LEN`], a header line at
//!   [`MAX_HEADER_LINE`], the header count at [`MAX_HEADERS`] and the Via entries at
//!   [`MAX_VIAS`], and every pass over the bytes is linear;
//! - parses eagerly only what it needs to find the body and enforce those caps: the start
//!   line, header names, Content-Length and the Via count. The top Via, From, To, CSeq,
//!   Contact, Max-Forwards and the rest are parsed by an accessor on [`Scan`] when called.
//!   [`scan_lean`] checks the same and keeps only the headers admission reads, without
//!   header storage (the hot path's scan).
//!
//! It decides nothing: admitting, rejecting and answering belong to the callers.
//!
//! Leniency is explicit. Beyond the RFC 3261 ABNF the scanner accepts only:
//! - bare LF line endings, and only when [`ScanOptions::allow_bare_lf`] is set (off by
//!   default; see there why);
//! - any byte ≥ 0x80 in header values, reason phrases and display names, without UTF-8
//!   validation, so a Latin-1 display name from an old PBX still scans;
//! - empty elements in comma-separated lists (`a,,b`), which are skipped.
//!
//! Layout, one concern a file:
//! - `limits`: the caps ([`MAX_MESSAGE_LEN`] and the rest), [`ScanOptions`], [`ScanError`];
//! - `bytes`: the character classes and the small byte helpers the others share;
//! - `start_line`: [`Method`], [`StartLine`] and the start-line readers;
//! - `header`: [`HeaderName`], [`Header`], [`unfold`];
//! - `full`: [`scan`], [`scan_with`], [`Scan`] and its lazy accessors, and the line
//!   reading the lean scan shares;
//! - `lean`: [`scan_lean`] and [`Lean`], the hot path's one-pass scan;
//! - the typed header views: `via` ([`Via`]), `name_addr` ([`NameAddr`], [`Contact`]),
//!   `cseq` ([`CSeq`]), `params` ([`Params`], [`ListValues`]), and `uri` ([`uri_scheme`],
//!   [`uri_user`]);
//! - [`frame`]: the stream framer;
//! - for the tests only: `oracle` (the parsers the hand-written ones replaced, as
//!   references), `fixtures` (shared messages and input generators), `tests` (hostile input
//!   against the whole scanner).
//!
//! Line finding (`next_line`), header-name lookup (`HeaderName::parse`) and the byte classes
//! are small separate functions so a benchmark can swap any one of them.

mod bytes;
mod cseq;
pub mod frame;
mod full;
mod header;
mod lean;
mod limits;
mod name_addr;
mod params;
mod start_line;
mod uri;
mod via;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use bytes::{is_call_id, is_host, is_token, is_uri};
pub use cseq::CSeq;
pub use full::{Scan, scan, scan_with};
pub use header::{
    EMPTY_HEADER, Header, HeaderName, Unfolded, eq_unfolded, eq_unfolded_ignore_case, unfold,
};
pub use lean::{Lean, LeanHeaders, scan_lean};
pub use limits::{
    MAX_CONTENT_LENGTH, MAX_HEADER_LINE, MAX_HEADERS, MAX_MAX_FORWARDS, MAX_MESSAGE_LEN, MAX_VIAS,
    ScanError, ScanOptions,
};
pub use name_addr::{Contact, NameAddr};
pub use params::{ListValues, Param, Params};
pub use start_line::{Method, StartLine};
pub use uri::{uri_scheme, uri_user};
pub use via::{Rport, Transport, Via};
