//! The caps every scan enforces, the options it takes and the errors it returns.

/// Largest message accepted, start line, headers and body together: the largest UDP
/// payload, and the cap the stream framer never exceeds.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// Most header lines in one message. Real INVITEs carry 15 to 40.
pub const MAX_HEADERS: usize = 128;

/// Most Via entries in one message, counted across all Via headers and comma-separated
/// values. Real calls cross fewer than ten proxies; loops and floods carry more.
pub const MAX_VIAS: usize = 32;

/// Longest start line, or longest header including its folded continuation lines, not
/// counting the final line end. Long Authorization and Identity headers stay well below.
pub const MAX_HEADER_LINE: usize = 8_192;

/// Largest Max-Forwards value (RFC 3261 §20.22: "an integer in the range 0-255").
pub const MAX_MAX_FORWARDS: u32 = 255;

/// Largest Content-Length value that scans as a number. Bigger values are
/// [`ScanError::InvalidContentLength`]; values up to this but beyond the bytes at hand are
/// [`ScanError::Truncated`].
pub const MAX_CONTENT_LENGTH: u64 = u32::MAX as u64;

/// What the scanner accepts beyond the strict grammar, and what it requires per transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Accept a bare LF where RFC 3261 §7 requires CRLF ("The start-line, each
    /// message-header line, and the empty line MUST be terminated by a carriage-return
    /// line-feed sequence (CRLF)").
    ///
    /// Off by default. Carriers and SIP stacks send CRLF; the senders of bare LF are
    /// hand-made scripts and scanners. Accepting it would let one message mean different
    /// things to us and to a stricter stack behind us (a header hidden behind an LF that
    /// only one side treats as a line end), and the stream framer looks for CRLF CRLF only.
    /// Turn it on for a listener whose real peer needs it.
    pub allow_bare_lf: bool,
    /// Require a Content-Length header. RFC 3261 §20.14: it MUST be sent on stream
    /// transports; on UDP it may be missing and then the body runs to the end of the
    /// datagram (RFC 3261 §18.3).
    pub require_content_length: bool,
}

impl ScanOptions {
    /// For a UDP datagram: strict line endings, Content-Length optional.
    pub const DATAGRAM: Self = Self {
        allow_bare_lf: false,
        require_content_length: false,
    };
    /// For a frame cut by [`frame::frame`] from TCP or TLS: strict line endings,
    /// Content-Length required.
    ///
    /// [`frame::frame`]: super::frame::frame
    pub const STREAM: Self = Self {
        allow_bare_lf: false,
        require_content_length: true,
    };
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self::DATAGRAM
    }
}

/// Why a message, or one of its headers, did not scan. `Copy` and allocation-free so the
/// reject path stays cheap; the `&'static str` payloads are canonical header names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("message too large")]
    TooLarge,
    #[error("empty message, or only CRLF keepalives")]
    Empty,
    #[error("start line or header too long")]
    LineTooLong,
    #[error("malformed start line")]
    StartLine,
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    #[error("bare LF line ending")]
    BareLf,
    #[error("control character in a line")]
    ControlCharacter,
    #[error("invalid header name")]
    HeaderName,
    #[error("header line without a colon")]
    MissingColon,
    #[error("no empty line after the headers")]
    UnterminatedHeaders,
    #[error("too many headers")]
    TooManyHeaders,
    #[error("header storage full")]
    HeaderStorageFull,
    #[error("too many Via entries")]
    TooManyVias,
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("missing Content-Length")]
    MissingContentLength,
    #[error("body shorter than Content-Length")]
    Truncated,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("malformed parameters")]
    MalformedParameters,
}

#[cfg(test)]
mod tests {
    use super::super::frame::FrameError;
    use super::*;

    #[test]
    fn errors_are_small_and_display() {
        assert!(core::mem::size_of::<ScanError>() <= 24);
        assert_eq!(
            ScanError::MissingHeader("Via").to_string(),
            "missing Via header"
        );
        assert_eq!(
            ScanError::DuplicateHeader("Content-Length").to_string(),
            "duplicate Content-Length header"
        );
        assert_eq!(
            FrameError::TooLarge.to_string(),
            "message larger than the stream cap"
        );
    }
}
