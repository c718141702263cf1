//! Generic parameters (`;name=value`, RFC 3261 §25.1) and comma-separated list values:
//! the pieces every header view is read with.

use super::ScanError;
use super::bytes::{PARAM_VALUE, Res, TOKEN, class_len, fail, skip_lws, trim_lws};
use crate::sip::classify;

/// `quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE`, returned with its quotes
/// and with escapes as written.
pub(super) fn quoted_string(input: &[u8]) -> Res<'_, &[u8]> {
    if input.first() != Some(&b'"') {
        return fail(input);
    }
    // From one `"` or `\` to the next, 16 bytes at a time: display names are mostly
    // plain.
    let mut index = 1;
    while let Some(found) = classify::find_quote_or_escape(input, index) {
        index += found;
        if input.get(index) == Some(&b'"') {
            return Ok((
                input.get(index + 1..).unwrap_or_default(),
                input.get(..=index).unwrap_or_default(),
            ));
        }
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F): the escaped byte is skipped.
        index += 2;
    }
    fail(input)
}

/// One generic parameter (RFC 3261 §25.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    /// The value as written (a quoted string keeps its quotes); `None` for a bare flag.
    pub value: Option<&'a [u8]>,
}

/// `generic-param = token [ EQUAL gen-value ]`, preceded by `SEMI = SWS ";" SWS`.
/// Returns the parameter and what follows it; `None` when `input` does not start with
/// one. Once `=` is seen a value must follow: `;a="open` is malformed, not a flag.
/// [`Params`] calls [`generic_param_at`] with the LWS it already skipped.
#[cfg(test)]
pub(super) fn generic_param(input: &[u8]) -> Option<(&[u8], Param<'_>)> {
    generic_param_at(input, skip_lws(input, 0))
}

/// [`generic_param`] of `input`, whose LWS before the `;` ends at `semi`.
///
/// The SWS around `;` and `=` is nearly always empty: [`skip_lws`] looks at one byte
/// before it walks.
#[inline(always)]
fn generic_param_at(input: &[u8], semi: usize) -> Option<(&[u8], Param<'_>)> {
    if input.get(semi) != Some(&b';') {
        return None;
    }
    let name_start = skip_lws(input, semi + 1);
    let after_name = input.get(name_start..)?;
    let name_len = class_len(after_name, &TOKEN);
    if name_len == 0 {
        return None;
    }
    let name = after_name.get(..name_len)?;
    let name_end = name_start + name_len;
    let equal = skip_lws(input, name_end);
    if input.get(equal) != Some(&b'=') {
        let rest = input.get(name_end..)?;
        return Some((rest, Param { name, value: None }));
    }
    let value_start = skip_lws(input, equal + 1);
    let tail = input.get(value_start..)?;
    let (rest, value) = if tail.first() == Some(&b'"') {
        quoted_string(tail).ok()?
    } else {
        let len = class_len(tail, &PARAM_VALUE);
        if len == 0 {
            return None;
        }
        tail.split_at_checked(len)
            .map(|(value, rest)| (rest, value))?
    };
    Some((
        rest,
        Param {
            name,
            value: Some(value),
        },
    ))
}

/// Iterates `*( SEMI generic-param )`, the parameters after a Via sent-by or a From, To or
/// Contact address. Yields one [`ScanError::MalformedParameters`] and stops at the first
/// byte that does not fit.
#[derive(Clone, Debug)]
pub struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Self { rest: raw }
    }

    /// The first parameter called `name` (case-insensitive), ignoring anything malformed.
    pub fn get(self, name: &[u8]) -> Option<Param<'a>> {
        self.map_while(Result::ok)
            .find(|param| param.name.eq_ignore_ascii_case(name))
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Nothing but LWS left is the end; else the first other byte must be the `;`.
        // Nothing at all, the usual end, is told before anything else is set up.
        let &first = self.rest.first()?;
        let semi = if first == b';' {
            0
        } else {
            skip_lws(self.rest, 0)
        };
        if semi >= self.rest.len() {
            return None;
        }
        match generic_param_at(self.rest, semi) {
            Some((rest, param)) => {
                self.rest = rest;
                Some(Ok(param))
            }
            None => {
                self.rest = &[];
                Some(Err(ScanError::MalformedParameters))
            }
        }
    }
}

/// Splits a list header value (`#element`: Via, Contact, Route, ...) at the commas that
/// are not inside a quoted string or an `<...>` URI. Yields each element trimmed, and
/// skips empty ones.
#[derive(Clone, Debug)]
pub struct ListValues<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> ListValues<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for ListValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            // Nearly every value left holds no comma: one element, not walked byte by byte.
            if !classify::has_comma(rest) {
                self.rest = None;
                let element = trim_lws(rest);
                return (!element.is_empty()).then_some(element);
            }
            let split = list_comma(rest);
            let element = match split {
                Some(index) => {
                    self.rest = rest.get(index + 1..);
                    rest.get(..index).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let element = trim_lws(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

/// Where the first comma that separates list elements is: not inside a quoted string
/// (with its `\\` escapes) nor inside `<...>`. A `"` inside `<...>` still opens a quoted
/// string, and `<` inside one is text. Jumps from one byte that matters to the next
/// (memchr), as most values are long stretches of plain text.
fn list_comma(value: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut in_angle = false;
    loop {
        let rest = value.get(at..)?;
        let found = if in_angle {
            memchr::memchr2(b'"', b'>', rest)
        } else {
            memchr::memchr3(b',', b'"', b'<', rest)
        };
        let index = at + found?;
        match value[index] {
            b',' => return Some(index),
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            _ => {
                // Past the closing quote, an escaped byte skipped; unclosed: no comma.
                let mut quoted = index + 1;
                loop {
                    let found = memchr::memchr2(b'"', b'\\', value.get(quoted..)?)?;
                    quoted += found;
                    if value[quoted] == b'"' {
                        break;
                    }
                    quoted += 2;
                }
                at = quoted + 1;
                continue;
            }
        }
        at = index + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`list_comma`] as first written: one byte at a time, the states as flags.
    fn list_comma_bytewise(rest: &[u8]) -> Option<usize> {
        let mut in_quotes = false;
        let mut in_angle = false;
        let mut escaped = false;
        for (index, &byte) in rest.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if in_quotes {
                match byte {
                    b'\\' => escaped = true,
                    b'"' => in_quotes = false,
                    _ => {}
                }
            } else {
                match byte {
                    b'"' => in_quotes = true,
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b',' if !in_angle => return Some(index),
                    _ => {}
                }
            }
        }
        None
    }

    proptest! {
        #[test]
        fn list_comma_finds_what_the_bytewise_walk_finds(
            value in proptest::collection::vec(
                prop_oneof![
                    Just(b','), Just(b'"'), Just(b'<'), Just(b'>'), Just(b'\\'),
                    Just(b'a'), Just(b' '), Just(b';'),
                ],
                0..40,
            )
        ) {
            prop_assert_eq!(list_comma(&value), list_comma_bytewise(&value));
        }
    }

    #[test]
    fn list_comma_skips_quoted_and_bracketed_commas() {
        let cases: [(&[u8], Option<usize>); 7] = [
            (b"SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b", Some(22)),
            (b"\"Doe, J\" <sip:a@b>, <sip:c@d>", Some(18)),
            (b"<sip:a@b;x=1,2>, <sip:c@d>", Some(15)),
            (b"\"a\\\",b\", c", Some(7)),
            (b"<sip:\"x,y\">, z", Some(11)),
            (b"\"unclosed, c", None),
            (b"<sip:a,b", None),
        ];
        for (value, comma) in cases {
            assert_eq!(
                list_comma(value),
                comma,
                "{}",
                String::from_utf8_lossy(value)
            );
            assert_eq!(list_comma_bytewise(value), comma);
        }
    }

    #[test]
    fn params_iterator() {
        let params: Vec<Param<'_>> = Params::new(b" ; a=1 ;b; c = \"x;y\" ;d=[2001:db8::1]")
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            params,
            [
                Param {
                    name: b"a",
                    value: Some(b"1")
                },
                Param {
                    name: b"b",
                    value: None
                },
                Param {
                    name: b"c",
                    value: Some(b"\"x;y\"")
                },
                Param {
                    name: b"d",
                    value: Some(b"[2001:db8::1]")
                },
            ]
        );
        let mut broken = Params::new(b";a=1;=2;b=3");
        assert!(broken.next().unwrap().is_ok());
        assert_eq!(broken.next(), Some(Err(ScanError::MalformedParameters)));
        assert_eq!(broken.next(), None);
        assert_eq!(
            Params::new(b";a=\"open").next(),
            Some(Err(ScanError::MalformedParameters))
        );
    }

    #[test]
    fn list_values() {
        let values: Vec<&[u8]> =
            ListValues::new(b" a , \"b,c\" <sip:d,e@f>;x=\"\\\",\" ,, g ,").collect();
        assert_eq!(
            values,
            [&b"a"[..], b"\"b,c\" <sip:d,e@f>;x=\"\\\",\"", b"g"]
        );
        assert_eq!(ListValues::new(b"").count(), 0);
        assert_eq!(ListValues::new(b" , ,").count(), 0);
    }

    /// A value without a comma is one element, trimmed, or none when blank: what walking
    /// it byte by byte would find, which the fast path skips.
    #[test]
    fn a_value_without_a_comma_is_one_trimmed_element() {
        let cases: [(&[u8], &[&[u8]]); 5] = [
            (b"", &[]),
            (b"   ", &[]),
            (b" \r\n ", &[]),
            (b" SIP/2.0/UDP a ", &[b"SIP/2.0/UDP a"]),
            (b"\"x\" <sip:a;lr>", &[b"\"x\" <sip:a;lr>"]),
        ];
        for (value, expected) in cases {
            let elements: Vec<&[u8]> = ListValues::new(value).collect();
            assert_eq!(elements, expected, "{:?}", String::from_utf8_lossy(value));
        }
    }
}
