//! `trunkd::sip::scan::frame::frame`, the TCP/TLS framer, fed a byte stream the way a
//! connection reader feeds it.
//!
//! Input: byte 0 picks `max_len` (`n * 32`, or `usize::MAX` for 0xFF, which the framer
//! clamps to `MAX_MESSAGE_LEN`), byte 1 picks the chunk sizes (low 3 bits: the largest
//! chunk, from 1 byte to 8 KiB; the rest: the seed of the sizes), the rest is the stream.
//! The stream is framed twice: all at once, and appended chunk by chunk to a buffer with
//! `frame()` called after each append, consuming keepalives and messages, until an error.
//!
//! Properties:
//! - no panic;
//! - the framing does not depend on the split points: the same messages at the same
//!   offsets, and the same error at the same offset, either way. Keepalive boundaries may
//!   differ (a CRLF CRLF ping split in two reads as two CRLF pongs, as documented);
//! - no unbounded buffering: after `Incomplete` the buffer holds fewer than `max_len` bytes
//!   (or at most 3, a keepalive prefix), so it never grows past `max_len` plus one chunk
//!   before an error is reported;
//! - each `KeepAlive` is CRLF or CRLF CRLF; each `Message` is at most `max_len` bytes,
//!   holds an empty line, and frames alone as the same message;
//! - every message goes through `scan` and `scan_with(ScanOptions::STREAM)` without a
//!   panic, and the scanner agrees with the framer on its length: when it accepts the
//!   message, `message_len()` is the frame's length, and it never refuses it for its
//!   Content-Length (missing, invalid, duplicate, beyond the frame) or its size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkd::sip::scan::frame::{Frame, FrameError, frame};
use trunkd::sip::scan::{
    EMPTY_HEADER, MAX_HEADERS, MAX_MESSAGE_LEN, ScanError, ScanOptions, scan, scan_with,
};

fuzz_target!(|data: &[u8]| {
    let [cap_selector, split_selector, stream @ ..] = data else {
        return;
    };
    let max_len = match *cap_selector {
        0xFF => usize::MAX,
        n => usize::from(n) * 32,
    };
    let cap = max_len.min(MAX_MESSAGE_LEN);

    let whole = frame_whole(stream, max_len, cap);
    let chunked = frame_chunked(stream, max_len, cap, Chunks::new(*split_selector));
    assert_eq!(
        whole, chunked,
        "framing depends on the split points (whole stream, then chunked)"
    );
});

/// What framing a stream produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Each message, as its offset in the stream and its length.
    messages: Vec<(usize, usize)>,
    /// The error that ended the stream, with the offset of the buffer's front then.
    error: Option<(usize, FrameError)>,
}

/// The reference: the whole stream is in the buffer from the start.
fn frame_whole(stream: &[u8], max_len: usize, cap: usize) -> Outcome {
    let mut outcome = Outcome {
        messages: Vec::new(),
        error: None,
    };
    let mut front = 0;
    loop {
        let buffer = &stream[front..];
        match step(buffer, max_len, cap) {
            Ok(Frame::Incomplete) => break,
            Ok(Frame::KeepAlive { len }) => front += len,
            Ok(Frame::Message { len }) => {
                check_scan(&buffer[..len]);
                outcome.messages.push((front, len));
                front += len;
            }
            Err(error) => {
                outcome.error = Some((front, error));
                break;
            }
        }
    }
    outcome
}

/// A connection reader: append a chunk, frame until `Incomplete`, repeat; stop at an error.
fn frame_chunked(stream: &[u8], max_len: usize, cap: usize, mut chunks: Chunks) -> Outcome {
    let mut outcome = Outcome {
        messages: Vec::new(),
        error: None,
    };
    let mut buffer: Vec<u8> = Vec::new();
    let mut front = 0; // offset in the stream of buffer[0]
    let mut fed = 0;
    'read: while fed < stream.len() {
        let size = chunks.next_size().min(stream.len() - fed);
        buffer.extend_from_slice(&stream[fed..fed + size]);
        fed += size;
        loop {
            match step(&buffer, max_len, cap) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { len }) => {
                    buffer.drain(..len);
                    front += len;
                }
                Ok(Frame::Message { len }) => {
                    // Scanned by frame_whole: the comparison shows the bytes are the same.
                    outcome.messages.push((front, len));
                    buffer.drain(..len);
                    front += len;
                }
                Err(error) => {
                    outcome.error = Some((front, error));
                    break 'read;
                }
            }
        }
        assert!(
            buffer.len() < cap.max(4),
            "buffered {} bytes with max_len {cap} and no error",
            buffer.len()
        );
    }
    outcome
}

/// One `frame()` call, with what must hold of its answer alone.
fn step(buffer: &[u8], max_len: usize, cap: usize) -> Result<Frame, FrameError> {
    let result = frame(buffer, max_len);
    match result {
        Ok(Frame::Incomplete) => assert!(
            buffer.len() < cap.max(4),
            "Incomplete with {} bytes buffered, max_len {cap}",
            buffer.len()
        ),
        Ok(Frame::KeepAlive { len }) => match len {
            2 => assert!(buffer.starts_with(b"\r\n")),
            4 => assert!(buffer.starts_with(b"\r\n\r\n")),
            _ => panic!("KeepAlive of {len} bytes"),
        },
        Ok(Frame::Message { len }) => {
            assert!(len <= cap, "message of {len} bytes, max_len {cap}");
            assert!(
                len <= buffer.len(),
                "message of {len} bytes in {}",
                buffer.len()
            );
            let message = &buffer[..len];
            assert!(
                !message.starts_with(b"\r\n"),
                "message starts with a keepalive"
            );
            assert!(
                message.windows(4).any(|window| window == b"\r\n\r\n"),
                "message without an empty line"
            );
            assert_eq!(
                frame(message, max_len),
                result,
                "a message frames differently alone"
            );
        }
        Err(_) => {}
    }
    result
}

/// The scanner must take a framed message whole, or refuse it for a reason other than its
/// length.
fn check_scan(message: &[u8]) {
    for options in [ScanOptions::DATAGRAM, ScanOptions::STREAM] {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let result = if options == ScanOptions::DATAGRAM {
            scan(message, &mut storage)
        } else {
            scan_with(message, &mut storage, options)
        };
        match result {
            Ok(scanned) => {
                assert_eq!(
                    scanned.message_len(),
                    message.len(),
                    "scanner and framer disagree on the length of {message:?}"
                );
                assert!(scanned.content_length().is_some());
                let _ = scanned.body();
            }
            Err(
                error @ (ScanError::TooLarge
                | ScanError::Empty
                | ScanError::Truncated
                | ScanError::MissingContentLength
                | ScanError::InvalidContentLength
                | ScanError::DuplicateHeader("Content-Length")),
            ) => panic!("framed message refused by the scanner ({error}): {message:?}"),
            Err(_) => {}
        }
    }
}

/// Chunk sizes for the reader: 1 to `max` bytes, from a fixed xorshift sequence.
struct Chunks {
    state: u32,
    max: u32,
}

impl Chunks {
    fn new(selector: u8) -> Self {
        const MAX: [u32; 8] = [1, 4, 16, 64, 256, 1024, 4096, 8192];
        Self {
            state: 0x9E37_79B9 ^ (u32::from(selector >> 3) << 8) ^ u32::from(selector),
            max: MAX[usize::from(selector & 7)],
        }
    }

    fn next_size(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        (1 + self.state % self.max) as usize
    }
}
