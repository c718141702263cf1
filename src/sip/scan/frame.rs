//! Cuts a TCP or TLS byte stream into SIP messages and keepalives, before [`scan`]
//! (RFC 3261 §18.3, RFC 5626 §3.5.1). A cheap completeness check, as in mini-redis's
//! `Frame::check`: it finds the end of the headers and reads Content-Length, nothing
//! more. It keeps no state; the caller owns the buffer and consumes `len` bytes per
//! frame.
//!
//! Every error is fatal for the connection: once the length of a message is unknown
//! the stream cannot be resynchronised, so close it.
//!
//! [`scan`]: super::scan

use super::bytes::{is_wsp, parse_content_length, trim_wsp_end};
use super::{HeaderName, MAX_MESSAGE_LEN};
use memchr::{memchr, memmem};

/// What the front of the buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet; read more and call again with the grown buffer.
    Incomplete,
    /// A keepalive to consume (RFC 5626 §3.5.1): `len == 4` is a ping (CRLF CRLF) to
    /// answer with a pong, `len == 2` a pong (a lone CRLF). RFC 3261 §7.5 also makes
    /// stray CRLFs before a start line ignorable, which this covers.
    KeepAlive { len: usize },
    /// A complete message in the first `len` bytes: headers, empty line and body.
    Message { len: usize },
}

impl Frame {
    /// A CRLF CRLF ping, which RFC 5626 §3.5.1 says to answer with a CRLF pong.
    pub fn is_ping(&self) -> bool {
        *self == Frame::KeepAlive { len: 4 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message larger than the stream cap")]
    TooLarge,
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("duplicate Content-Length")]
    DuplicateContentLength,
}

/// Frames the front of `buffer`. `max_len` caps a whole message (clamped to
/// [`MAX_MESSAGE_LEN`]); it is checked before waiting for more bytes, both while the
/// headers have no end yet and as soon as Content-Length is known, so a hostile peer
/// cannot make us buffer more than `max_len`.
///
/// Content-Length is required: RFC 3261 §18.3 frames stream messages by it, and
/// §20.14 says "If a stream-based protocol (such as TCP) is used as transport, the
/// header field MUST be used". A lone CRLF at the end of the buffer is read as a pong,
/// not as half a ping: pongs arrive alone and must not wait for more bytes, while a
/// ping is one 4-byte write that is almost never split (if one is, it reads as two
/// pongs).
///
/// Work per call is one bounded search over at most `max_len` bytes; a caller that
/// calls again on every read of a slow stream pays that search again, at most
/// `max_len` bytes per read.
pub fn frame(buffer: &[u8], max_len: usize) -> Result<Frame, FrameError> {
    let max_len = max_len.min(MAX_MESSAGE_LEN);
    match buffer {
        [] | [b'\r'] | [b'\r', b'\n', b'\r'] => return Ok(Frame::Incomplete),
        [b'\r', b'\n', b'\r', b'\n', ..] => return Ok(Frame::KeepAlive { len: 4 }),
        [b'\r', b'\n', ..] => return Ok(Frame::KeepAlive { len: 2 }),
        _ => {}
    }
    let window = buffer.get(..max_len).unwrap_or(buffer);
    let Some(empty_line) = memmem::find(window, b"\r\n\r\n") else {
        return if buffer.len() >= max_len {
            Err(FrameError::TooLarge)
        } else {
            Ok(Frame::Incomplete)
        };
    };
    // The start line and every header line, each with its CRLF.
    let head = buffer.get(..empty_line + 2).unwrap_or_default();
    let content_length = content_length(head)?.ok_or(FrameError::MissingContentLength)?;
    let len = (empty_line + 4)
        .checked_add(content_length)
        .ok_or(FrameError::TooLarge)?;
    if len > max_len {
        Err(FrameError::TooLarge)
    } else if buffer.len() < len {
        Ok(Frame::Incomplete)
    } else {
        Ok(Frame::Message { len })
    }
}

/// The Content-Length of a message head (start line and headers, each ending in
/// CRLF), folded values included; `None` if there is none. Uses the scanner's name
/// lookup and number parser so the framer and [`super::scan`] always agree.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found = None;
    // The byte range of the Content-Length value being read, continuations included.
    let mut pending: Option<(usize, usize)> = None;
    let mut start = match memchr(b'\n', head) {
        Some(lf) => lf + 1, // skip the start line
        None => return Ok(None),
    };
    while let Some(lf) = head.get(start..).and_then(|rest| memchr(b'\n', rest)) {
        let end = start + lf;
        let content_end = if end > start && head.get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        let line = head.get(start..content_end).unwrap_or_default();
        if line.first().is_some_and(|&b| is_wsp(b)) {
            if let Some((_, value_end)) = &mut pending {
                *value_end = content_end;
            }
        } else {
            finish(head, pending.take(), &mut found)?;
            if let Some(colon) = memchr(b':', line) {
                let name = trim_wsp_end(line.get(..colon).unwrap_or_default());
                if HeaderName::parse(name) == HeaderName::ContentLength {
                    pending = Some((start + colon + 1, content_end));
                }
            }
        }
        start = end + 1;
    }
    finish(head, pending, &mut found)?;
    Ok(found)
}

fn finish(
    head: &[u8],
    pending: Option<(usize, usize)>,
    found: &mut Option<usize>,
) -> Result<(), FrameError> {
    let Some((value_start, value_end)) = pending else {
        return Ok(());
    };
    if found.is_some() {
        return Err(FrameError::DuplicateContentLength);
    }
    let value = head.get(value_start..value_end).unwrap_or_default();
    *found = Some(parse_content_length(value).ok_or(FrameError::InvalidContentLength)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{FOLDED_IPV6, INVITE};
    use super::super::{EMPTY_HEADER, MAX_HEADERS, ScanOptions, scan_with};
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: 1@h\r\nContent-Length: 0\r\n\r\n";
    const MESSAGE: &[u8] =
        b"MESSAGE sip:a.example.com SIP/2.0\r\nCall-ID: 2@h\r\nl: 11\r\n\r\nhello\r\n\r\n!!";
    const RESPONSE: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: 3@h\r\nContent-Length:\r\n 3\r\n\r\nabc";

    #[test]
    fn keepalives() {
        assert_eq!(frame(b"", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r\n\r", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r\n", 100), Ok(Frame::KeepAlive { len: 2 }));
        assert_eq!(frame(b"\r\n\r\n", 100), Ok(Frame::KeepAlive { len: 4 }));
        assert_eq!(
            frame(b"\r\n\r\nOPTIONS", 100),
            Ok(Frame::KeepAlive { len: 4 })
        );
        assert_eq!(frame(b"\r\nOPTIONS", 100), Ok(Frame::KeepAlive { len: 2 }));
        assert!(Frame::KeepAlive { len: 4 }.is_ping());
        assert!(!Frame::KeepAlive { len: 2 }.is_ping());
    }

    #[test]
    fn frames_messages() {
        assert_eq!(
            frame(OPTIONS, 1_000),
            Ok(Frame::Message { len: OPTIONS.len() })
        );
        assert_eq!(
            frame(MESSAGE, 1_000),
            Ok(Frame::Message { len: MESSAGE.len() })
        );
        assert_eq!(
            frame(RESPONSE, 1_000),
            Ok(Frame::Message {
                len: RESPONSE.len()
            })
        );
        for message in [OPTIONS, MESSAGE, RESPONSE] {
            for end in 1..message.len() {
                assert_eq!(
                    frame(&message[..end], 1_000),
                    Ok(Frame::Incomplete),
                    "{end}"
                );
            }
        }
        let mut followed = MESSAGE.to_vec();
        followed.extend_from_slice(OPTIONS);
        assert_eq!(
            frame(&followed, 1_000),
            Ok(Frame::Message { len: MESSAGE.len() })
        );
    }

    #[test]
    fn framing_errors() {
        let no_length = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n";
        assert_eq!(
            frame(no_length, 1_000),
            Err(FrameError::MissingContentLength)
        );
        let twice = b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frame(twice, 1_000), Err(FrameError::DuplicateContentLength));
        let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -3\r\n\r\n";
        assert_eq!(frame(bad, 1_000), Err(FrameError::InvalidContentLength));
        // The start line is not a header, even when it looks like one.
        let start = b"Content-Length: 0\r\nCall-ID: x\r\n\r\n";
        assert_eq!(frame(start, 1_000), Err(FrameError::MissingContentLength));
    }

    #[test]
    fn framing_cap_is_checked_before_waiting() {
        // The headers promise more than the cap: refuse before the body arrives.
        let promise = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 60000\r\n\r\n";
        assert_eq!(frame(promise, 1_000), Err(FrameError::TooLarge));
        assert_eq!(frame(promise, 100_000), Ok(Frame::Incomplete));
        let beyond = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 65500\r\n\r\n";
        assert_eq!(frame(beyond, usize::MAX), Err(FrameError::TooLarge));
        // Headers that never end: wait up to the cap, then refuse.
        let endless = "X: y\r\n".repeat(50);
        assert_eq!(frame(&endless.as_bytes()[..99], 100), Ok(Frame::Incomplete));
        assert_eq!(
            frame(&endless.as_bytes()[..100], 100),
            Err(FrameError::TooLarge)
        );
        assert_eq!(frame(endless.as_bytes(), 100), Err(FrameError::TooLarge));
        // A message exactly at the cap is fine.
        assert_eq!(
            frame(OPTIONS, OPTIONS.len()),
            Ok(Frame::Message { len: OPTIONS.len() })
        );
        assert_eq!(frame(OPTIONS, OPTIONS.len() - 1), Err(FrameError::TooLarge));
    }

    /// Frames and consumes everything complete at the front of `buffer`.
    fn drain(buffer: &mut Vec<u8>, messages: &mut Vec<Vec<u8>>, keepalive_bytes: &mut usize) {
        loop {
            match frame(buffer, MAX_MESSAGE_LEN).expect("stream should frame") {
                Frame::Incomplete => return,
                Frame::KeepAlive { len } => {
                    *keepalive_bytes += len;
                    buffer.drain(..len);
                }
                Frame::Message { len } => {
                    messages.push(buffer.drain(..len).collect());
                }
            }
        }
    }

    #[test]
    fn three_messages_split_at_every_offset() {
        let stream = [OPTIONS, MESSAGE, RESPONSE].concat();
        for split in 0..=stream.len() {
            let mut buffer = Vec::new();
            let mut messages = Vec::new();
            let mut keepalive_bytes = 0;
            for chunk in [&stream[..split], &stream[split..]] {
                buffer.extend_from_slice(chunk);
                drain(&mut buffer, &mut messages, &mut keepalive_bytes);
            }
            assert_eq!(messages, [OPTIONS, MESSAGE, RESPONSE], "split at {split}");
            assert!(buffer.is_empty());
            assert_eq!(keepalive_bytes, 0);
        }
    }

    #[test]
    fn byte_by_byte_stream_with_keepalives() {
        let stream = [
            b"\r\n\r\n",
            OPTIONS,
            b"\r\n",
            MESSAGE,
            b"\r\n\r\n",
            RESPONSE,
        ]
        .concat();
        let mut buffer = Vec::new();
        let mut messages = Vec::new();
        let mut keepalive_bytes = 0;
        for &byte in &stream {
            buffer.push(byte);
            drain(&mut buffer, &mut messages, &mut keepalive_bytes);
        }
        assert_eq!(messages, [OPTIONS, MESSAGE, RESPONSE]);
        assert_eq!(keepalive_bytes, 10);
        assert!(buffer.is_empty());

        // Whole writes keep pings and pongs apart.
        let mut buffer = stream.clone();
        let mut kinds = Vec::new();
        while !buffer.is_empty() {
            let framed = frame(&buffer, MAX_MESSAGE_LEN).unwrap();
            let len = match framed {
                Frame::KeepAlive { len } | Frame::Message { len } => len,
                Frame::Incomplete => panic!("complete stream reported incomplete"),
            };
            kinds.push(framed);
            buffer.drain(..len);
        }
        assert_eq!(
            kinds,
            [
                Frame::KeepAlive { len: 4 },
                Frame::Message { len: OPTIONS.len() },
                Frame::KeepAlive { len: 2 },
                Frame::Message { len: MESSAGE.len() },
                Frame::KeepAlive { len: 4 },
                Frame::Message {
                    len: RESPONSE.len()
                },
            ]
        );
    }

    #[test]
    fn framer_and_scanner_agree() {
        for message in [OPTIONS, MESSAGE, RESPONSE, INVITE, FOLDED_IPV6] {
            let Ok(Frame::Message { len }) = frame(message, MAX_MESSAGE_LEN) else {
                panic!("{:?} did not frame", String::from_utf8_lossy(message));
            };
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            let scanned = scan_with(&message[..len], &mut storage, ScanOptions::STREAM).unwrap();
            assert_eq!(scanned.message_len(), len);
        }
    }
}
