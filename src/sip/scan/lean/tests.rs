//! The lean scan against the full one: every accessor agrees, on the wire vectors and
//! their every prefix, and the fast path's pieces read what the general readers read.

use super::super::bytes::trim_lws;
use super::super::fixtures::{FOLDED_IPV6, INVITE, LENIENT, garbage, request};
use super::super::full::split_header_line;
use super::super::header::KNOWN_HEADERS;
use super::*;

/// [`scan_lean`] accepts and refuses what [`scan_with`] does, with the same error,
/// and every accessor of the two agrees. Returns whether the fast path took it.
pub(in crate::sip::scan) fn assert_lean_agrees(bytes: &[u8], options: ScanOptions) -> bool {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    let full = scan_with(bytes, &mut storage, options);
    let fast = lean_fast(bytes, options).is_some();
    let lean = scan_lean(bytes, options);
    let (full, lean) = match (full, lean) {
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{bytes:?}");
            assert!(!fast);
            return false;
        }
        (Ok(full), Ok(lean)) => (full, lean),
        (full, lean) => panic!("scan_with {full:?}, scan_lean {lean:?}: {bytes:?}"),
    };
    let headers: Vec<Header<'_>> = lean.headers().collect();
    assert_eq!(headers, full.headers(), "{bytes:?}");
    assert_eq!(lean.header_count(), full.headers().len());
    assert_eq!(lean.start_line(), full.start_line());
    assert_eq!(lean.method(), full.method());
    assert_eq!(lean.status_code(), full.status_code());
    assert_eq!(lean.request_uri_user(), full.request_uri_user());
    let tracked = [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::Contact,
        HeaderName::ContentLength,
        HeaderName::ProxyAuthorization,
    ];
    for name in tracked
        .into_iter()
        .chain(full.headers().iter().map(|header| header.name))
    {
        assert_eq!(lean.header(name), full.header(name), "{name:?}");
        assert!(lean.header_values(name).eq(full.header_values(name)));
    }
    assert!(lean.via_values().eq(full.header_values(HeaderName::Via)));
    assert_eq!(lean.body().as_ptr(), full.body().as_ptr());
    assert_eq!(lean.body().len(), full.body().len());
    assert_eq!(lean.content_length(), full.content_length());
    assert_eq!(lean.message_len(), full.message_len());
    assert_eq!(lean.via_count(), full.via_count());
    for _ in 0..2 {
        // Twice: the second answer comes from the cache.
        assert_eq!(lean.top_via(), full.top_via());
        assert_eq!(lean.to().copied(), full.to());
    }
    if let Ok((entry, via)) = lean.top_via_entry() {
        assert_eq!(
            Some(entry),
            full.header(HeaderName::Via)
                .and_then(|v| ListValues::new(v).next())
        );
        assert_eq!(Via::parse(entry), Ok(via));
    }
    assert!(lean.vias().eq(full.vias()));
    assert_eq!(lean.from(), full.from());
    assert_eq!(lean.call_id(), full.call_id());
    assert_eq!(lean.cseq(), full.cseq());
    assert_eq!(lean.max_forwards(), full.max_forwards());
    assert_eq!(lean.contact(), full.contact());
    assert!(lean.contacts().eq(full.contacts()));
    fast
}

#[test]
fn control_positions_are_every_control_byte_in_order() {
    // Every byte value at every offset of a block, then messy lengths around 64.
    let mut block = [b'a'; 64];
    for index in 0..64 {
        for byte in 0..=255u8 {
            block[index] = byte;
            let expected = u64::from(is_control(byte) || byte == b'\t') << index;
            assert_eq!(
                classify::control_mask(&block),
                expected,
                "{byte:#04x} at {index}"
            );
        }
        block[index] = b'a';
    }
    for len in [0, 1, 63, 64, 65, 127, 128, 129, 200, 1_000] {
        for seed in 1..20 {
            let bytes = garbage(len, seed);
            let expected: Vec<usize> = (0..len).filter(|&i| is_control(bytes[i])).collect();
            let found: Vec<usize> = Controls::new(&bytes).collect();
            assert_eq!(found, expected, "{len} bytes, seed {seed}");
        }
    }
}

#[test]
fn lean_scan_agrees_with_the_full_scan_on_the_corpus() {
    let mut fast = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "sip") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        for options in [ScanOptions::DATAGRAM, ScanOptions::STREAM, LENIENT] {
            fast += usize::from(assert_lean_agrees(&bytes, options));
            // Line by line, every prefix and every line dropped.
            for end in 0..bytes.len() {
                assert_lean_agrees(&bytes[..end], options);
            }
            let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
            for skip in 0..lines.len() {
                let without: Vec<u8> = lines
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| *index != skip)
                    .flat_map(|(_, line)| line.iter().copied())
                    .collect();
                assert_lean_agrees(&without, options);
                let doubled: Vec<u8> = lines
                    .iter()
                    .enumerate()
                    .flat_map(|(index, line)| {
                        let times = if index == skip { 2 } else { 1 };
                        std::iter::repeat_n(line.iter().copied(), times).flatten()
                    })
                    .collect();
                assert_lean_agrees(&doubled, options);
            }
        }
    }
    assert!(files >= 20, "{files} vectors");
    assert!(fast >= 20, "the fast path took only {fast} scans");
}

#[test]
fn lean_scan_takes_the_fast_path_for_plain_messages_only() {
    assert!(assert_lean_agrees(INVITE, ScanOptions::DATAGRAM));
    assert!(!assert_lean_agrees(FOLDED_IPV6, ScanOptions::DATAGRAM));
    let bare = String::from_utf8(INVITE.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(!assert_lean_agrees(bare.as_bytes(), LENIENT));
    let tab = String::from_utf8(INVITE.to_vec())
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards:\t70\t");
    assert!(assert_lean_agrees(tab.as_bytes(), ScanOptions::DATAGRAM));
    for control in [0u8, 0x7f, b'\r', 0x1b] {
        let mut bytes = INVITE.to_vec();
        let at = bytes.windows(2).position(|w| w == b"70").unwrap();
        bytes[at] = control;
        assert!(!assert_lean_agrees(&bytes, ScanOptions::DATAGRAM));
    }
    let many_vias = request(&"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n".repeat(16));
    assert!(assert_lean_agrees(&many_vias, ScanOptions::DATAGRAM));
    let too_many = request(&"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n".repeat(17));
    assert!(!assert_lean_agrees(&too_many, ScanOptions::DATAGRAM));
    let headers = request(&"X-A: 1\r\n".repeat(MAX_HEADERS));
    assert!(assert_lean_agrees(&headers, ScanOptions::DATAGRAM));
    let headers = request(&"X-A: 1\r\n".repeat(MAX_HEADERS + 1));
    assert!(!assert_lean_agrees(&headers, ScanOptions::DATAGRAM));
}

/// Every spelling of `name` in upper and lower case (each letter either way).
fn case_variants(name: &[u8]) -> Vec<Vec<u8>> {
    let letters: Vec<usize> = (0..name.len())
        .filter(|&index| name[index].is_ascii_alphabetic())
        .collect();
    (0..1u32 << letters.len())
        .map(|upper| {
            let mut variant = name.to_ascii_lowercase();
            for (bit, &index) in letters.iter().enumerate() {
                if upper & (1 << bit) != 0 {
                    variant[index] = variant[index].to_ascii_uppercase();
                }
            }
            variant
        })
        .collect()
}

/// The lean scan's name reading ([`kept_name`], then [`header_name`]) against
/// [`split_header_line`] and [`lean_name`], for `line` followed by each `tails`.
fn assert_names_agree(line: &[u8]) {
    let expected = split_header_line(line)
        .ok()
        .map(|(name, after_colon)| (lean_name(name), after_colon - 1));
    for tail in [&b""[..], b"\r\n", b"\r\n\r\n", b"\r\nVia: x\r\n\r\nbody"] {
        let rest = [line, tail].concat();
        let found = kept_name(&rest).or_else(|| header_name(&rest, line));
        assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(&rest));
    }
}

#[test]
fn kept_names_are_read_as_the_full_scan_reads_them() {
    let kept = [
        &b"via"[..],
        b"from",
        b"to",
        b"cseq",
        b"call-id",
        b"contact",
        b"content-length",
        b"max-forwards",
    ];
    let mut names: Vec<Vec<u8>> = Vec::new();
    for name in kept {
        names.extend(case_variants(name));
        // Names that share a prefix with a kept name, or are one byte short of it.
        for more in [&b"x"[..], b"-foo", b"s", b"0", b"~"] {
            names.push([name, more].concat());
        }
        names.push(name[..name.len() - 1].to_vec());
        names.push(name[1..].to_vec());
        for index in 0..name.len() {
            for replacement in [
                b'x',
                b'-',
                b'.',
                b'_',
                name[index] ^ 0x20,
                name[index] ^ 0x01,
            ] {
                let mut changed = name.to_vec();
                changed[index] = replacement;
                names.push(changed);
            }
        }
    }
    for byte in 0..=255u8 {
        names.push(vec![byte]);
        names.push(vec![b'x', byte]);
    }
    for known in &KNOWN_HEADERS {
        names.push(known.canonical().as_bytes().to_vec());
    }
    for name in &names {
        for colon in [
            &b":"[..],
            b": value",
            b":value",
            b" : v",
            b"\t:",
            b"  ",
            b"",
            b" x:",
        ] {
            let line = [name, colon].concat();
            if line.iter().any(|&b| is_control(b)) {
                // A lean scan line ends at its first control byte.
                continue;
            }
            assert_names_agree(&line);
        }
    }
    // Each kept name is recognised without the general reading, in every spelling.
    for name in kept
        .iter()
        .chain(&[&b"v"[..], b"f", b"t", b"i", b"l", b"m"])
    {
        for variant in case_variants(name) {
            let line = [&variant[..], b": x\r\n"].concat();
            assert!(kept_name(&line).is_some(), "{variant:?}");
            // Also at the very end of the message, with nothing after the colon.
            let line = [&variant[..], b":"].concat();
            assert!(kept_name(&line).is_some(), "{variant:?}");
        }
    }
}

#[test]
fn line_ends_split_across_blocks_are_found() {
    // The CR of the first header line at every offset around the first two block
    // ends, then at the end of the message.
    for pad in 0..140 {
        let mut message = b"OPTIONS sip:a SIP/2.0\r\nX: ".to_vec();
        message.extend(std::iter::repeat_n(b'a', pad));
        let cr = message.len();
        message.extend_from_slice(b"\r\nl: 0\r\n\r\n");
        let mut controls = Controls::new(&message);
        let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
        assert_eq!(ends, [21, cr, cr + 6, cr + 8], "{pad}");
        assert!(assert_lean_agrees(&message, ScanOptions::DATAGRAM), "{pad}");
        // HTABs (skipped one at a time) anywhere in the line, and right before the
        // CR or the next line's CR.
        for at in 25..cr + 6 {
            let mut tabs = message.clone();
            if tabs[at] == b'a' || tabs[at] == b' ' || tabs[at] == b'0' {
                tabs[at] = b'\t';
                tabs[cr - 1] = b'\t';
                let mut controls = Controls::new(&tabs);
                let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
                assert_eq!(ends, [21, cr, cr + 6, cr + 8], "{pad} {at}");
                assert_lean_agrees(&tabs, ScanOptions::DATAGRAM);
            }
        }
        // A CR without its LF, or an LF without its CR, at the same place.
        for broken in [&b"\rX"[..], b"\r\r", b"\n\n", b"X\n"] {
            let mut bad = message.clone();
            bad[cr..cr + 2].copy_from_slice(broken);
            let mut controls = Controls::new(&bad);
            let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
            assert_eq!(ends, [21], "{pad} {broken:?}");
            assert!(!assert_lean_agrees(&bad, ScanOptions::DATAGRAM));
            assert!(!assert_lean_agrees(&bad, LENIENT));
        }
    }
}

#[test]
fn short_decimals_are_parse_decimal() {
    let mut values: Vec<Vec<u8>> = Vec::new();
    for len in 0..=12 {
        values.push(vec![b'9'; len]);
        values.push(vec![b'0'; len]);
        values.push((0..len).map(|i| b'0' + (i % 10) as u8).collect());
    }
    for value in [
        &b"4294967295"[..],
        b"4294967296",
        b"12a",
        b" 1",
        b"1 ",
        b"+1",
        b"-0",
        b"/",
        b":",
    ] {
        values.push(value.to_vec());
    }
    for value in &values {
        let expected = parse_decimal(value, MAX_CONTENT_LENGTH);
        let short = short_decimal(value);
        let plain = (1..=9).contains(&value.len()) && value.iter().all(u8::is_ascii_digit);
        assert_eq!(short.is_some(), plain, "{value:?}");
        if let Some(short) = short {
            assert_eq!(Some(u64::from(short)), expected, "{value:?}");
        }
    }
}

#[test]
fn trimming_a_value_without_folds_is_trim_lws() {
    for value in [
        &b""[..],
        b" ",
        b"\t",
        b" \t ",
        b"x",
        b" x",
        b"x ",
        b" \tx y\t ",
        b"\tx\t",
        b"  x  y  ",
    ] {
        assert_eq!(trim_wsp(value), trim_lws(value), "{value:?}");
    }
}
