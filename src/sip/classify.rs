//! Byte classes of the hot-path scanner, 16 or 64 bytes at a time: which bytes are control
//! bytes (or HTAB), and how long a run of token or URI bytes is.
//!
//! On x86_64 these use SSE2, which every x86_64 CPU has (it is part of the target's
//! baseline, so no run-time detection is needed); elsewhere the same answers come from the
//! scalar code, which is also what the tests hold the SSE2 code to. Nothing here reads
//! outside the slice it is given: a vector load only ever reads a `&[u8; 16]`.
//!
//! The classes are the scanner's own (see the tables in `scan`), restated as ranges:
//! - control: C0 but HTAB, and DEL (found together with HTAB, as C0 and DEL);
//! - token (RFC 3261 §25.1): `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
//!   "'" / "~"`;
//! - URI (the scanner's lenient Request-URI): `%x21-3B / %x3D / %x3F-7E`, i.e. visible
//!   ASCII but `<` and `>`.
//! - Via plain: letters, digits, `-` and `.` (the host bytes), whose complement marks a
//!   Via's delimiters for the fast Via parser.

/// A control byte: C0 but HTAB, and DEL.
#[cfg(test)]
pub(crate) fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7F
}

/// A token byte (RFC 3261 §25.1).
pub(crate) fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// A byte of the scanner's lenient Request-URI.
pub(crate) fn is_uri(byte: u8) -> bool {
    matches!(byte, 0x21..=0x3B | 0x3D | 0x3F..=0x7E)
}

/// A C0 byte (HTAB included) or DEL: a control byte, or HTAB.
pub(crate) fn is_control_or_tab(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7F
}

/// The control bytes and HTABs of 64 bytes, bit `i` for `block[i]` (HTAB is left in
/// because taking it out costs more than skipping the rare HTAB later).
#[inline]
pub(crate) fn control_mask(block: &[u8; 64]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::control_mask(block)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        scalar::control_mask(block)
    }
}

/// The classes of the run lengths, as `run_len`'s parameter.
const TOKEN: u8 = 0;
const URI: u8 = 1;
const VISIBLE: u8 = 2;
const PLAIN: u8 = 3;

/// The byte test of a run-length class: the scalar answer, and the SSE2 tail's.
fn class_of(class: u8) -> fn(u8) -> bool {
    match class {
        TOKEN => is_token,
        URI => is_uri,
        PLAIN => is_via_plain,
        _ => is_visible,
    }
}

/// How many bytes at the start of `bytes` are in `CLASS`.
#[inline]
fn run_len<const CLASS: u8>(bytes: &[u8]) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::run_len::<CLASS>(bytes)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        scalar::run_len(bytes, class_of(CLASS))
    }
}

/// How many bytes at the start of `bytes` are token bytes.
#[inline]
pub(crate) fn token_len(bytes: &[u8]) -> usize {
    run_len::<TOKEN>(bytes)
}

/// [`token_len`] of a header line, whose name nearly always is letters, digits, `-` and `.`
/// up to its colon: a run of those (a test of a few ranges, where the token class has
/// ten marks more) that ends at a colon is the token run. Anything else is read as one.
#[inline]
pub(crate) fn header_name_len(line: &[u8]) -> usize {
    let plain = run_len::<PLAIN>(line);
    match line.get(plain) {
        Some(b':') => plain,
        _ => token_len(line),
    }
}

/// A visible ASCII byte (`%x21-7E`): a Call-ID's.
pub(crate) fn is_visible(byte: u8) -> bool {
    (0x21..=0x7E).contains(&byte)
}

/// How many bytes at the start of `bytes` are visible ASCII.
#[inline]
pub(crate) fn visible_len(bytes: &[u8]) -> usize {
    run_len::<VISIBLE>(bytes)
}

/// How many bytes at the start of `bytes` are URI bytes.
#[inline]
pub(crate) fn uri_len(bytes: &[u8]) -> usize {
    run_len::<URI>(bytes)
}

/// Whether `bytes` holds a comma.
#[inline]
pub(crate) fn has_comma(bytes: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::find_byte::<b','>(bytes).is_some()
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        bytes.contains(&b',')
    }
}

/// Where the first `>` in `bytes` is: the end of a `<URI>` in an address header.
#[inline]
pub(crate) fn find_close_angle(bytes: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::find_byte::<b'>'>(bytes)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        bytes.iter().position(|&byte| byte == b'>')
    }
}

// The searches below look in `bytes[from..]` and answer an offset from `from` (`None`
// also when `from` is past the end). They take the whole slice so that a short search
// near its end can still read 16 bytes at once: the bytes before `from` are loaded but
// never reported.

/// Where the first `@` in `bytes[from..]` is: the end of a SIP URI's userinfo.
#[inline]
pub(crate) fn find_at(bytes: &[u8], from: usize) -> Option<usize> {
    find_either::<b'@', b'@'>(bytes, from)
}

/// Where the first `@` or `:` in `bytes[from..]` is: the end of a SIP URI's user.
#[inline]
pub(crate) fn find_user_end(bytes: &[u8], from: usize) -> Option<usize> {
    find_either::<b'@', b':'>(bytes, from)
}

/// Where the first `"` or `\` in `bytes[from..]` is: the end of a quoted string's plain
/// run.
#[inline]
pub(crate) fn find_quote_or_escape(bytes: &[u8], from: usize) -> Option<usize> {
    find_either::<b'"', b'\\'>(bytes, from)
}

/// Where the first `A` or `B` in `bytes[from..]` is.
#[inline(always)]
fn find_either<const A: u8, const B: u8>(bytes: &[u8], from: usize) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::find_either::<A, B>(bytes, from)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        bytes
            .get(from..)?
            .iter()
            .position(|&byte| byte == A || byte == B)
    }
}

/// A Via's plain bytes: letters, digits, `-` and `.` (a transport, an IPv4 or host name
/// host, a port, and nearly every parameter name and value).
pub(crate) fn is_via_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.'
}

/// The bytes of a Via's `bytes` after `SIP/2.0/` that are not plain ([`is_via_plain`]):
/// its delimiters, and anything else. Bit `i` for `bytes[i]`; `None` unless `bytes` holds
/// 16 to 128 bytes.
#[inline]
pub(crate) fn via_delimiters(bytes: &[u8]) -> Option<u128> {
    if !(16..=128).contains(&bytes.len()) {
        return None;
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        Some(sse2::via_delimiters(bytes))
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        Some(scalar::via_delimiters(bytes))
    }
}

/// The reference answers: used on targets without SSE2, and by the tests everywhere.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod scalar {
    pub(super) fn control_mask(block: &[u8; 64]) -> u64 {
        block.iter().enumerate().fold(0, |mask, (index, &byte)| {
            mask | (u64::from(super::is_control_or_tab(byte)) << index)
        })
    }

    pub(super) fn run_len(bytes: &[u8], class: fn(u8) -> bool) -> usize {
        bytes.iter().take_while(|&&byte| class(byte)).count()
    }

    /// `bytes` holds at most 128 bytes.
    pub(super) fn via_delimiters(bytes: &[u8]) -> u128 {
        bytes.iter().enumerate().fold(0, |mask, (index, &byte)| {
            mask | (u128::from(!super::is_via_plain(byte)) << index)
        })
    }
}

/// The SSE2 versions. The module is compiled only where SSE2 is enabled for the whole
/// build (x86_64's baseline), so the one requirement of the SSE2 intrinsics, a CPU that
/// has SSE2, always holds; each intrinsic is called in one small helper below, inlined
/// into every caller.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_sub_epi8,
    };

    /// The 16 bytes as a vector.
    #[inline(always)]
    fn load(chunk: &[u8; 16]) -> __m128i {
        // SAFETY: `chunk` is 16 readable bytes, exactly what the load reads, and
        // `_mm_loadu_si128` has no alignment requirement; SSE2 is enabled (module `cfg`).
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) }
    }

    /// `byte` as the `i8` that `_mm_set1_epi8` takes.
    #[inline(always)]
    fn splat(byte: u8) -> __m128i {
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        unsafe { _mm_set1_epi8(i8::from_ne_bytes([byte])) }
    }

    /// Lanes where `low <= x <= low + span` (unsigned): `x - low`, wrapping, is at most
    /// `span` exactly then, and an unsigned `min` tells.
    #[inline(always)]
    fn in_range(x: __m128i, low: u8, span: u8) -> __m128i {
        let (low, span) = (splat(low), splat(span));
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        unsafe {
            let shifted = _mm_sub_epi8(x, low);
            _mm_cmpeq_epi8(_mm_min_epu8(shifted, span), shifted)
        }
    }

    #[inline(always)]
    fn equal(x: __m128i, byte: u8) -> __m128i {
        let byte = splat(byte);
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        unsafe { _mm_cmpeq_epi8(x, byte) }
    }

    /// One bit per lane, from the lanes' top bits.
    #[inline(always)]
    fn bits(lanes: __m128i) -> u16 {
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        let mask = unsafe { _mm_movemask_epi8(lanes) };
        // movemask sets only the low 16 bits.
        mask as u16
    }

    /// Lanes set in `a` or in `b`.
    #[inline(always)]
    fn either(a: __m128i, b: __m128i) -> __m128i {
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        unsafe { _mm_or_si128(a, b) }
    }

    /// Lanes where `x <= max` (unsigned): `min(x, max)` is `x` exactly then.
    #[inline(always)]
    fn at_most(x: __m128i, max: u8) -> __m128i {
        let max = splat(max);
        // SAFETY: SSE2 is enabled (module `cfg`); no pointers.
        unsafe { _mm_cmpeq_epi8(_mm_min_epu8(x, max), x) }
    }

    /// C0 bytes (`0x00..=0x1F`, HTAB included) and DEL.
    #[inline(always)]
    fn control16(chunk: &[u8; 16]) -> u16 {
        let x = load(chunk);
        bits(either(at_most(x, 0x1F), equal(x, 0x7F)))
    }

    #[inline(always)]
    pub(super) fn control_mask(block: &[u8; 64]) -> u64 {
        let (chunks, _) = block.as_chunks::<16>();
        chunks.iter().enumerate().fold(0, |mask, (index, chunk)| {
            mask | (u64::from(control16(chunk)) << (16 * index))
        })
    }

    /// Token bytes: letters (either case), digits and `- . ! % * _ + ` ' ~`.
    #[inline(always)]
    pub(super) fn token_mask(chunk: &[u8; 16]) -> u16 {
        let x = load(chunk);
        // `| 0x20` maps `A-Z` onto `a-z` and nothing else into `a-z`.
        let letter = in_range(either(x, splat(0x20)), b'a', 25);
        let digit = in_range(x, b'0', 9);
        let marks = [b'-', b'.', b'!', b'%', b'*', b'_', b'+', b'`', b'\'', b'~']
            .into_iter()
            .fold(either(letter, digit), |lanes, mark| {
                either(lanes, equal(x, mark))
            });
        bits(marks)
    }

    /// Visible ASCII: `0x21..=0x7E`.
    #[inline(always)]
    pub(super) fn visible_mask(chunk: &[u8; 16]) -> u16 {
        bits(in_range(load(chunk), 0x21, 0x7E - 0x21))
    }

    /// URI bytes: `0x21..=0x7E` but `<` and `>`.
    #[inline(always)]
    pub(super) fn uri_mask(chunk: &[u8; 16]) -> u16 {
        let x = load(chunk);
        let visible = bits(in_range(x, 0x21, 0x7E - 0x21));
        let angles = bits(either(equal(x, b'<'), equal(x, b'>')));
        visible & !angles
    }

    /// The bytes of 16 that are not letters, digits, `-` or `.`.
    #[inline(always)]
    fn via16(chunk: &[u8; 16]) -> u16 {
        let x = load(chunk);
        // `| 0x20` maps `A-Z` onto `a-z` and nothing else into `a-z`; `-` and `.` are
        // next to each other.
        let letter = in_range(either(x, splat(0x20)), b'a', 25);
        let marks = either(in_range(x, b'-', 1), in_range(x, b'0', 9));
        !bits(either(letter, marks))
    }

    /// `bytes` holds 16 to 128 bytes: whole chunks, then the last (fewer than 16) bytes as
    /// the top lanes of the last 16.
    #[inline(always)]
    pub(super) fn via_delimiters(bytes: &[u8]) -> u128 {
        let (chunks, rest) = bytes.as_chunks::<16>();
        let mut delimiters = 0u128;
        for (index, chunk) in chunks.iter().enumerate() {
            delimiters |= u128::from(via16(chunk)) << (16 * index);
        }
        if let (false, Some(last)) = (rest.is_empty(), bytes.last_chunk::<16>()) {
            // Lanes `16 - rest.len()..` of the last 16 bytes are `rest`.
            let tail = via16(last) >> (16 - rest.len());
            delimiters |= u128::from(tail) << (16 * chunks.len());
        }
        delimiters
    }

    /// `bytes`, 4 to 15 of them, as one vector's lanes without reading past them: its
    /// first and last `half` bytes (8, or 4 when there are fewer than 8), which overlap in
    /// the middle. Lanes `0..half` are `bytes[..half]`, lanes `half..2 * half` are
    /// `bytes[len - half..]`, the rest 0. `None` for fewer than 4 bytes.
    #[inline(always)]
    fn overlapped(bytes: &[u8]) -> Option<([u8; 16], usize)> {
        let mut chunk = [0u8; 16];
        if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            chunk[..8].copy_from_slice(first);
            chunk[8..].copy_from_slice(last);
            Some((chunk, 8))
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
        {
            chunk[..4].copy_from_slice(first);
            chunk[4..8].copy_from_slice(last);
            Some((chunk, 4))
        } else {
            None
        }
    }

    /// The first lane set in `lanes` of an [`overlapped`] vector of `len` bytes, as an
    /// index into those bytes. A lane of the second half that is set for a byte the first
    /// half also holds was set in the first half too, so the first half is looked at
    /// first and the second half's first lane is then past it.
    #[inline(always)]
    fn first_overlapped(lanes: u16, half: usize, len: usize) -> Option<usize> {
        let low = lanes & ((1 << half) - 1);
        let high = (lanes >> half) & ((1 << half) - 1);
        if low != 0 {
            Some(low.trailing_zeros() as usize)
        } else if high != 0 {
            Some(len - half + high.trailing_zeros() as usize)
        } else {
            None
        }
    }

    /// Where the first `BYTE` in `bytes` is. Short address values would spend more in
    /// memchr's set-up.
    #[inline(always)]
    pub(super) fn find_byte<const BYTE: u8>(bytes: &[u8]) -> Option<usize> {
        find(
            bytes,
            0,
            |chunk| bits(equal(load(chunk), BYTE)),
            |byte| byte == BYTE,
        )
    }

    /// Where the first `A` or `B` in `bytes[from..]` is, as an offset from `from`.
    #[inline(always)]
    pub(super) fn find_either<const A: u8, const B: u8>(
        bytes: &[u8],
        from: usize,
    ) -> Option<usize> {
        find(
            bytes,
            from,
            |chunk| {
                let x = load(chunk);
                bits(either(equal(x, A), equal(x, B)))
            },
            |byte| byte == A || byte == B,
        )
    }

    /// Where the first byte of `bytes[from..]` that `lanes` marks (and `wanted` tells one
    /// at a time) is, as an offset from `from`: 16 bytes at a time, then the last (fewer
    /// than 16) as the top lanes of the last 16 of all `bytes`, or, when `bytes` is
    /// shorter than 16, as an [`overlapped`] vector (one at a time below 4 bytes).
    #[inline(always)]
    fn find(
        bytes: &[u8],
        from: usize,
        lanes: impl Fn(&[u8; 16]) -> u16,
        wanted: impl Fn(u8) -> bool,
    ) -> Option<usize> {
        let (chunks, rest) = bytes.get(from..)?.as_chunks::<16>();
        for (index, chunk) in chunks.iter().enumerate() {
            let found = lanes(chunk);
            if found != 0 {
                return Some(16 * index + found.trailing_zeros() as usize);
            }
        }
        if rest.is_empty() {
            return None;
        }
        let offset = 16 * chunks.len();
        match bytes.last_chunk::<16>() {
            // Lanes `16 - rest.len()..` of the last 16 bytes are `rest`; the lanes below
            // were searched already or are before `from`, and are shifted out.
            Some(last) => {
                let found = lanes(last) >> (16 - rest.len());
                (found != 0).then(|| offset + found.trailing_zeros() as usize)
            }
            // Shorter than 16 in all: `rest` is `bytes[from..]`.
            None => match overlapped(rest) {
                Some((chunk, half)) => first_overlapped(lanes(&chunk), half, rest.len()),
                None => rest.iter().position(|&byte| wanted(byte)),
            },
        }
    }

    /// How many bytes at the start of `bytes` are in `CLASS`: 16 at a time, then the last
    /// (fewer than 16) bytes as the top lanes of the last 16, or, when `bytes` is shorter
    /// than 16, as an [`overlapped`] vector (one at a time below 4 bytes).
    #[inline(always)]
    pub(super) fn run_len<const CLASS: u8>(bytes: &[u8]) -> usize {
        type Mask = fn(&[u8; 16]) -> u16;
        let mask: Mask = match CLASS {
            super::TOKEN => |chunk| token_mask(chunk),
            super::URI => |chunk| uri_mask(chunk),
            super::PLAIN => |chunk| !via16(chunk),
            _ => |chunk| visible_mask(chunk),
        };
        let class = super::class_of(CLASS);
        let mut offset = 0;
        while let Some(chunk) = bytes
            .get(offset..)
            .and_then(|rest| rest.first_chunk::<16>())
        {
            let outside = !mask(chunk);
            if outside != 0 {
                return offset + outside.trailing_zeros() as usize;
            }
            offset += 16;
        }
        let rest = bytes.get(offset..).unwrap_or_default();
        if rest.is_empty() {
            return offset;
        }
        if let Some(last) = bytes.last_chunk::<16>() {
            // Lanes `16 - rest.len()..` of the last 16 bytes are `rest`; the lanes below
            // were read as whole chunks already, and are shifted out.
            let outside = !mask(last) >> (16 - rest.len());
            return offset + (outside.trailing_zeros() as usize).min(rest.len());
        }
        // Shorter than 16: `offset` is 0.
        match overlapped(bytes) {
            Some((chunk, half)) => {
                first_overlapped(!mask(&chunk), half, bytes.len()).unwrap_or(bytes.len())
            }
            None => bytes.iter().take_while(|&&byte| class(byte)).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs for the run-length tests: for every length up to 40 (past two chunks, and
    /// not a multiple of 16) and every position in it, a run of class bytes broken at that
    /// position by each byte value.
    fn check_run(len_of: fn(&[u8]) -> usize, class: fn(u8) -> bool, filler: u8) {
        for len in 0..=40 {
            for position in 0..len {
                for byte in 0..=255u8 {
                    let mut input = vec![filler; len];
                    input[position] = byte;
                    let expected = scalar::run_len(&input, class);
                    assert_eq!(len_of(&input), expected, "{input:?}");
                    // And seen from every offset, so chunks start everywhere.
                    for start in 1..len.min(17) {
                        let tail = &input[start..];
                        assert_eq!(len_of(tail), scalar::run_len(tail, class), "{tail:?}");
                    }
                }
            }
            assert_eq!(len_of(&vec![filler; len]), len);
        }
    }

    #[test]
    fn the_classes_are_the_scanners_tables() {
        for byte in 0..=255u8 {
            assert_eq!(
                is_token(byte),
                super::super::scan::is_token(byte),
                "{byte:#x}"
            );
            assert_eq!(is_uri(byte), super::super::scan::is_uri(byte), "{byte:#x}");
            assert_eq!(
                is_visible(byte),
                super::super::scan::is_call_id(byte),
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn the_control_mask_class_is_the_control_bytes_and_htab() {
        for byte in 0..=255u8 {
            assert_eq!(
                is_control_or_tab(byte),
                is_control(byte) || byte == b'\t',
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn visible_runs_match_the_scalar_answer() {
        check_run(visible_len, is_visible, b'~');
        check_run(visible_len, is_visible, b'!');
    }

    #[test]
    fn token_runs_match_the_scalar_answer() {
        check_run(token_len, is_token, b'a');
        check_run(token_len, is_token, b'Z');
    }

    #[test]
    fn plain_runs_match_the_scalar_answer() {
        check_run(run_len::<PLAIN>, is_via_plain, b'a');
        check_run(run_len::<PLAIN>, is_via_plain, b'-');
    }

    /// `header_name_len` is `token_len`: a run broken by every byte value at every
    /// position, with a colon after the break or not, and at the end.
    #[test]
    fn header_name_runs_are_token_runs() {
        for filler in [b'a', b'-', b'_'] {
            for len in 0..=40 {
                for position in 0..len {
                    for byte in 0..=255u8 {
                        for colon in [None, Some(position + 1), Some(len - 1)] {
                            let mut input = vec![filler; len];
                            input[position] = byte;
                            if let Some(colon) = colon.filter(|&colon| colon < len) {
                                input[colon] = b':';
                            }
                            assert_eq!(header_name_len(&input), token_len(&input), "{input:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn uri_runs_match_the_scalar_answer() {
        check_run(uri_len, is_uri, b's');
    }

    #[test]
    fn commas_are_found_anywhere() {
        for len in 0..=70 {
            let mut bytes = vec![b'a'; len];
            assert!(!has_comma(&bytes), "{len}");
            for position in 0..len {
                bytes[position] = b',';
                assert!(has_comma(&bytes), "{len} {position}");
                bytes[position] = b'a';
            }
        }
    }

    #[test]
    fn the_first_close_angle_is_found_anywhere() {
        for len in 0..=70 {
            let mut bytes = vec![b'<'; len];
            assert_eq!(find_close_angle(&bytes), None, "{len}");
            for first in 0..len {
                bytes[first] = b'>';
                assert_eq!(find_close_angle(&bytes), Some(first), "{len} {first}");
                // A later one does not move it.
                for later in first + 1..len {
                    bytes[later] = b'>';
                    assert_eq!(find_close_angle(&bytes), Some(first), "{len} {first}");
                    bytes[later] = b'<';
                }
                bytes[first] = b'<';
            }
        }
    }

    /// The two-byte searches (and `find_at`) against a byte loop: every placement of one
    /// or two wanted bytes in fillers, searched from every offset.
    #[test]
    fn the_first_of_two_bytes_is_found_from_anywhere() {
        type Search = fn(&[u8], usize) -> Option<usize>;
        let searches: [(Search, [u8; 2]); 3] = [
            (find_at, [b'@', b'@']),
            (find_user_end, [b'@', b':']),
            (find_quote_or_escape, [b'"', b'\\']),
        ];
        let check = |find: Search, wanted: [u8; 2], bytes: &[u8]| {
            for from in 0..=bytes.len() + 1 {
                let expected = bytes
                    .get(from..)
                    .and_then(|rest| rest.iter().position(|byte| wanted.contains(byte)));
                assert_eq!(find(bytes, from), expected, "{bytes:?} from {from}");
            }
        };
        for (find, wanted) in searches {
            for filler in [b'a', 0xFF, b'<'] {
                for len in 0..=40 {
                    let mut bytes = vec![filler; len];
                    check(find, wanted, &bytes);
                    for first in 0..len {
                        for byte in wanted {
                            bytes[first] = byte;
                            check(find, wanted, &bytes);
                            for later in first + 1..len {
                                bytes[later] = wanted[0];
                                check(find, wanted, &bytes);
                                bytes[later] = filler;
                            }
                            bytes[first] = filler;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn via_delimiters_match_the_scalar_answer() {
        // The bytes at the edges of the plain ranges (`-` `.`, digits, letters either
        // case and what `| 0x20` maps into them), and a few others.
        let edges = [
            0x00, b' ', b',', b'-', b'.', b'/', b'0', b'9', b':', b';', b'=', b'@', b'A', b'Z',
            b'[', b'`', b'a', b'z', b'{', 0x7F, 0x80, 0xC1, 0xDA, 0xFF,
        ];
        for len in 0..=140 {
            let every_byte = [15, 16, 17, 47, 63, 64, 65, 127, 128].contains(&len);
            for filler in [b'a', b';'] {
                let mut bytes = vec![filler; len];
                let expected = (16..=128)
                    .contains(&len)
                    .then(|| scalar::via_delimiters(&bytes));
                assert_eq!(via_delimiters(&bytes), expected, "{len}");
                for position in 0..len {
                    for byte in 0..=255u8 {
                        if !every_byte && !edges.contains(&byte) {
                            continue;
                        }
                        bytes[position] = byte;
                        let expected = (16..=128)
                            .contains(&len)
                            .then(|| scalar::via_delimiters(&bytes));
                        assert_eq!(via_delimiters(&bytes), expected, "{bytes:?}");
                    }
                    bytes[position] = filler;
                }
            }
        }
        // The plain bytes are the host bytes, which the fast Via parser relies on.
        for byte in 0..=255u8 {
            assert_eq!(
                is_via_plain(byte),
                super::super::scan::is_host(byte),
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn control_masks_match_the_scalar_answer() {
        for filler in [b' ', b'a', 0x80, 0xFF] {
            for position in 0..64 {
                for byte in 0..=255u8 {
                    let mut block = [filler; 64];
                    block[position] = byte;
                    assert_eq!(
                        control_mask(&block),
                        scalar::control_mask(&block),
                        "{byte:#x} at {position}"
                    );
                }
            }
        }
        // Every byte value at once, at every rotation.
        let mut all = [0u8; 256];
        for (index, byte) in all.iter_mut().enumerate() {
            *byte = index as u8;
        }
        for start in 0..256 - 64 {
            let block: &[u8; 64] = all[start..].first_chunk().unwrap();
            assert_eq!(control_mask(block), scalar::control_mask(block));
        }
    }
}
