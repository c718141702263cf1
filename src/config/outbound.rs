//! The keys of outbound calls: which trunk a call takes (`outbound_prefixes`, `priority`,
//! `weight`), how fast (`max_cps_outbound`), how the Request-URI and the caller are written
//! (`tech_prefix`, `caller_id`, `from_user`, `from_domain`, `send_pai`), and after which
//! final responses the next trunk is tried (`[daemon] outbound_failover_codes`).
//!
//! Parsing and validation only: nothing here places or routes a call.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::DeTable;

use super::load::MAX_CPS_RANGE;
use super::reader::TableReader;
use super::values::E164;
use crate::sip::Host;

/// Timeout (408) and server failures (500, 502, 503, 504): the carrier could not take the
/// call, so another may. A 4xx or 6xx other than 408 is an answer about the number.
pub(super) const DEFAULT_OUTBOUND_FAILOVER_CODES: [u16; 5] = [408, 500, 502, 503, 504];
const DEFAULT_PRIORITY: u32 = 100;
const DEFAULT_WEIGHT: u32 = 1;
/// ITU-T E.164 §6: a number has at most 15 digits, so a longer prefix matches nothing.
const PREFIX_MAX_DIGITS: usize = 15;
const TECH_PREFIX_MAX_LEN: usize = 16;
const FROM_USER_MAX_LEN: usize = 64;

/// `[daemon] outbound_failover_codes`: redirections and failures (300..=699), each once,
/// and never a digest challenge (401, 407), which trunkd answers instead of failing over.
pub(super) fn read_failover_codes(reader: &mut TableReader) -> Cow<'static, [u16]> {
    let key = "outbound_failover_codes";
    let Some(codes) = reader.integers(key, 300..700) else {
        return Cow::Borrowed(&DEFAULT_OUTBOUND_FAILOVER_CODES[..]);
    };
    let mut accepted: Vec<u16> = Vec::with_capacity(codes.len());
    for code in &codes {
        let value = *code.get_ref() as u16;
        if matches!(value, 401 | 407) {
            let message = format!(
                "{key}: {value} is a digest challenge, which trunkd answers; it cannot trigger failover"
            );
            reader.error(&code.span(), message);
        } else if accepted.contains(&value) {
            reader.error(&code.span(), format!("{key}: {value} is listed twice"));
        } else {
            accepted.push(value);
        }
    }
    Cow::Owned(accepted)
}

/// A trunk's outbound keys, validated.
pub(super) struct TrunkOutbound {
    pub prefixes: Vec<String>,
    pub priority: u32,
    pub weight: u32,
    pub max_cps: u32,
    pub tech_prefix: Option<String>,
    pub caller_id: Option<E164>,
    pub from_user: Option<String>,
    pub from_domain: Option<Host>,
    pub send_pai: bool,
}

/// Reads the outbound keys of `[trunks.<id>]`. `numbers` are the trunk's numbers that
/// parsed; `caller_id` must be one of them.
pub(super) fn read_trunk_outbound(
    r: &mut TableReader,
    table: &DeTable<'_>,
    numbers: &[Spanned<E164>],
) -> TrunkOutbound {
    let prefixes = r
        .parsed_list("outbound_prefixes", parse_prefix)
        .unwrap_or_default();
    for (index, prefix) in prefixes.iter().enumerate() {
        if prefixes[..index]
            .iter()
            .any(|earlier| earlier.get_ref() == prefix.get_ref())
        {
            let message = format!("outbound_prefixes: +{} is listed twice", prefix.get_ref());
            r.error(&prefix.span(), message);
        }
    }
    let priority = r
        .integer("priority", 0..i64::from(u32::MAX) + 1)
        .map_or(DEFAULT_PRIORITY, |n| n.into_inner() as u32);
    let weight = r
        .integer("weight", 1..10_001)
        .map_or(DEFAULT_WEIGHT, |n| n.into_inner() as u32);
    let max_cps = r
        .integer("max_cps_outbound", MAX_CPS_RANGE)
        .map_or(0, |n| n.into_inner() as u32);
    let tech_prefix = r.parsed("tech_prefix", parse_tech_prefix);
    let caller_id = r.parsed("caller_id", E164::parse);
    let from_user = r.parsed("from_user", parse_from_user);
    let from_domain = r.parsed("from_domain", Host::parse);
    let send_pai = r.boolean("send_pai").unwrap_or(false);

    // A number that did not parse has its own error; comparing against the rest would
    // add a second one for the same typo.
    let numbers_written = table
        .get("numbers")
        .and_then(|value| value.get_ref().as_array())
        .map_or(0, |entries| entries.len());
    if let Some(caller) = &caller_id
        && numbers.len() == numbers_written
        && !numbers
            .iter()
            .any(|number| number.get_ref() == caller.get_ref())
    {
        let none = if numbers.is_empty() {
            " (it has none)"
        } else {
            ""
        };
        let message = format!(
            "caller_id: {} is not one of this trunk's numbers{none}",
            caller.get_ref()
        );
        r.error(&caller.span(), message);
    }

    TrunkOutbound {
        prefixes: prefixes.into_iter().map(Spanned::into_inner).collect(),
        priority,
        weight,
        max_cps,
        tech_prefix: tech_prefix.map(Spanned::into_inner),
        caller_id: caller_id.map(Spanned::into_inner),
        from_user: from_user.map(Spanned::into_inner),
        from_domain: from_domain.map(Spanned::into_inner),
        send_pai,
    }
}

/// An E.164 prefix: an optional `+`, then 1 to 15 digits; spaces, `-` and `.` are visual
/// separators. Kept as the digits alone, the form dialled numbers are compared in.
fn parse_prefix(text: &str) -> Result<String, String> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    let shape_ok = (1..=PREFIX_MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit());
    if shape_ok {
        Ok(digits.to_owned())
    } else {
        Err(format!(
            "\"{text}\" is not an E.164 prefix: expected an optional + then 1 to {PREFIX_MAX_DIGITS} digits"
        ))
    }
}

/// A carrier's routing prefix: digits, `#` and `*`, as dialled in front of the number.
fn parse_tech_prefix(text: &str) -> Result<String, String> {
    let valid = (1..=TECH_PREFIX_MAX_LEN).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'#' || b == b'*');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "\"{text}\" must be 1 to {TECH_PREFIX_MAX_LEN} characters from 0-9, # and *"
        ))
    }
}

/// RFC 3261 §25.1 `user` without `escaped`: unreserved (alphanum, `-_.!~*'()`) and
/// user-unreserved (`&=+$,;?/`). Written as is into the From URI, so nothing needs `%`.
fn is_from_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)
}

fn parse_from_user(text: &str) -> Result<String, String> {
    let length = text.chars().count();
    if !(1..=FROM_USER_MAX_LEN).contains(&length) {
        return Err(format!(
            "\"{text}\" must be 1 to {FROM_USER_MAX_LEN} characters"
        ));
    }
    match text.chars().find(|c| !is_from_user_char(*c)) {
        Some(bad) => Err(format!(
            "\"{text}\" has {bad:?}, which a SIP URI user part cannot hold as is; use letters, digits and -_.!~*'()&=+$,;?/"
        )),
        None => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_drop_separators_and_the_plus() {
        assert_eq!(parse_prefix("+44 20").unwrap(), "4420");
        assert_eq!(parse_prefix("1-555.0").unwrap(), "15550");
        assert_eq!(parse_prefix("+1").unwrap(), "1");
        assert_eq!(parse_prefix("123456789012345").unwrap(), "123456789012345");
        for bad in [
            "",
            "+",
            "++1",
            "1+",
            "1234567890123456",
            "44a",
            "(44)",
            "+-",
        ] {
            assert!(parse_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tech_prefixes_are_digits_hash_and_star() {
        for good in ["1", "#31#", "*67", "0123456789#*0123"] {
            assert_eq!(parse_tech_prefix(good).unwrap(), good);
        }
        for bad in ["", "12345678901234567", "1a", "+1", " 1"] {
            assert!(parse_tech_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn from_users_are_rfc3261_user_characters() {
        let all = "aZ09-_.!~*'()&=+$,;?/";
        assert_eq!(parse_from_user(all).unwrap(), all);
        assert!(parse_from_user(&"u".repeat(64)).is_ok());
        for bad in ["", "a b", "a%20b", "a@b", "a:b", "né", "<a>", "a\"b"] {
            assert!(parse_from_user(bad).is_err(), "{bad:?}");
        }
        let error = parse_from_user(&"u".repeat(65)).unwrap_err();
        assert!(error.ends_with("must be 1 to 64 characters"), "{error}");
    }
}
