//! ISO 3166-1 country table for trunk configuration.
//!
//! This module owns validation of a trunk's `country` key (an ISO 3166-1
//! alpha-2 code such as `"US"`, `"GB"` or `"DE"`), the check that a trunk's
//! E.164 DIDs belong to that country (by E.164 country calling code), and the
//! national (trunk) prefix needed for the `national` number format.
//!
//! The `COUNTRIES` table is generated, not hand-written. It was produced from
//! the PyPI packages `pycountry` 26.2.16 (the full list of ISO 3166-1
//! alpha-2 codes, from `pycountry.countries`) and `phonenumbers` 9.0.43
//! (the E.164 calling code from `phonenumbers.country_code_for_region` and the
//! national prefix from `PhoneMetadata.metadata_for_region(..).national_prefix`).
//! ISO codes that `phonenumbers` has no metadata for get `calling_code: None`
//! and `national_prefix: None`; an empty or missing national prefix is `None`.
//!
//! To regenerate: install current `pycountry` and `phonenumbers` with pip, and
//! for every entry of `pycountry.countries` emit one `Country` line with its
//! upper-case alpha-2 code, the calling code (`None` when
//! `country_code_for_region` returns 0) and the national prefix, sorted by
//! alpha-2 code. Replace the table below with the output, update the package
//! versions in this comment, and run the unit tests (which check ordering and
//! a few known entries).

/// One ISO 3166-1 country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country {
    /// Upper-case ISO 3166-1 alpha-2 code, e.g. `"US"`.
    pub alpha2: &'static str,
    /// E.164 country calling code, e.g. 1, 44; `None` if none assigned.
    pub calling_code: Option<u16>,
    /// Trunk prefix dialled nationally, e.g. `Some("0")` for GB, `Some("1")`
    /// for US; `None` if none.
    pub national_prefix: Option<&'static str>,
}

impl Country {
    /// True when the E.164 digits (without '+', e.g. `"15551234567"`) start
    /// with the country's calling code.
    pub fn owns_number(&self, e164_digits: &str) -> bool {
        let Some(code) = self.calling_code else {
            return false;
        };
        if e164_digits.is_empty() || !e164_digits.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        e164_digits.starts_with(code.to_string().as_str())
    }
}

/// Looks up a country by alpha-2 code, case-sensitive upper-case only
/// (`"us"` -> `None`).
pub fn lookup(alpha2: &str) -> Option<&'static Country> {
    COUNTRIES
        .binary_search_by(|c| c.alpha2.cmp(alpha2))
        .ok()
        .map(|i| &COUNTRIES[i])
}

/// All ISO 3166-1 countries, sorted by `alpha2`. Generated; see module docs.
#[rustfmt::skip]
static COUNTRIES: [Country; 249] = [
    Country { alpha2: "AD", calling_code: Some(376), national_prefix: None },
    Country { alpha2: "AE", calling_code: Some(971), national_prefix: Some("0") },
    Country { alpha2: "AF", calling_code: Some(93), national_prefix: Some("0") },
    Country { alpha2: "AG", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "AI", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "AL", calling_code: Some(355), national_prefix: Some("0") },
    Country { alpha2: "AM", calling_code: Some(374), national_prefix: Some("0") },
    Country { alpha2: "AO", calling_code: Some(244), national_prefix: None },
    Country { alpha2: "AQ", calling_code: None, national_prefix: None },
    Country { alpha2: "AR", calling_code: Some(54), national_prefix: Some("0") },
    Country { alpha2: "AS", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "AT", calling_code: Some(43), national_prefix: Some("0") },
    Country { alpha2: "AU", calling_code: Some(61), national_prefix: Some("0") },
    Country { alpha2: "AW", calling_code: Some(297), national_prefix: None },
    Country { alpha2: "AX", calling_code: Some(358), national_prefix: Some("0") },
    Country { alpha2: "AZ", calling_code: Some(994), national_prefix: Some("0") },
    Country { alpha2: "BA", calling_code: Some(387), national_prefix: Some("0") },
    Country { alpha2: "BB", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "BD", calling_code: Some(880), national_prefix: Some("0") },
    Country { alpha2: "BE", calling_code: Some(32), national_prefix: Some("0") },
    Country { alpha2: "BF", calling_code: Some(226), national_prefix: None },
    Country { alpha2: "BG", calling_code: Some(359), national_prefix: Some("0") },
    Country { alpha2: "BH", calling_code: Some(973), national_prefix: None },
    Country { alpha2: "BI", calling_code: Some(257), national_prefix: None },
    Country { alpha2: "BJ", calling_code: Some(229), national_prefix: None },
    Country { alpha2: "BL", calling_code: Some(590), national_prefix: Some("0") },
    Country { alpha2: "BM", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "BN", calling_code: Some(673), national_prefix: None },
    Country { alpha2: "BO", calling_code: Some(591), national_prefix: Some("0") },
    Country { alpha2: "BQ", calling_code: Some(599), national_prefix: None },
    Country { alpha2: "BR", calling_code: Some(55), national_prefix: Some("0") },
    Country { alpha2: "BS", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "BT", calling_code: Some(975), national_prefix: None },
    Country { alpha2: "BV", calling_code: None, national_prefix: None },
    Country { alpha2: "BW", calling_code: Some(267), national_prefix: None },
    Country { alpha2: "BY", calling_code: Some(375), national_prefix: Some("8") },
    Country { alpha2: "BZ", calling_code: Some(501), national_prefix: None },
    Country { alpha2: "CA", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "CC", calling_code: Some(61), national_prefix: Some("0") },
    Country { alpha2: "CD", calling_code: Some(243), national_prefix: Some("0") },
    Country { alpha2: "CF", calling_code: Some(236), national_prefix: None },
    Country { alpha2: "CG", calling_code: Some(242), national_prefix: None },
    Country { alpha2: "CH", calling_code: Some(41), national_prefix: Some("0") },
    Country { alpha2: "CI", calling_code: Some(225), national_prefix: None },
    Country { alpha2: "CK", calling_code: Some(682), national_prefix: None },
    Country { alpha2: "CL", calling_code: Some(56), national_prefix: None },
    Country { alpha2: "CM", calling_code: Some(237), national_prefix: None },
    Country { alpha2: "CN", calling_code: Some(86), national_prefix: Some("0") },
    Country { alpha2: "CO", calling_code: Some(57), national_prefix: Some("0") },
    Country { alpha2: "CR", calling_code: Some(506), national_prefix: None },
    Country { alpha2: "CU", calling_code: Some(53), national_prefix: Some("0") },
    Country { alpha2: "CV", calling_code: Some(238), national_prefix: None },
    Country { alpha2: "CW", calling_code: Some(599), national_prefix: None },
    Country { alpha2: "CX", calling_code: Some(61), national_prefix: Some("0") },
    Country { alpha2: "CY", calling_code: Some(357), national_prefix: None },
    Country { alpha2: "CZ", calling_code: Some(420), national_prefix: None },
    Country { alpha2: "DE", calling_code: Some(49), national_prefix: Some("0") },
    Country { alpha2: "DJ", calling_code: Some(253), national_prefix: None },
    Country { alpha2: "DK", calling_code: Some(45), national_prefix: None },
    Country { alpha2: "DM", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "DO", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "DZ", calling_code: Some(213), national_prefix: Some("0") },
    Country { alpha2: "EC", calling_code: Some(593), national_prefix: Some("0") },
    Country { alpha2: "EE", calling_code: Some(372), national_prefix: None },
    Country { alpha2: "EG", calling_code: Some(20), national_prefix: Some("0") },
    Country { alpha2: "EH", calling_code: Some(212), national_prefix: Some("0") },
    Country { alpha2: "ER", calling_code: Some(291), national_prefix: Some("0") },
    Country { alpha2: "ES", calling_code: Some(34), national_prefix: None },
    Country { alpha2: "ET", calling_code: Some(251), national_prefix: Some("0") },
    Country { alpha2: "FI", calling_code: Some(358), national_prefix: Some("0") },
    Country { alpha2: "FJ", calling_code: Some(679), national_prefix: None },
    Country { alpha2: "FK", calling_code: Some(500), national_prefix: None },
    Country { alpha2: "FM", calling_code: Some(691), national_prefix: None },
    Country { alpha2: "FO", calling_code: Some(298), national_prefix: None },
    Country { alpha2: "FR", calling_code: Some(33), national_prefix: Some("0") },
    Country { alpha2: "GA", calling_code: Some(241), national_prefix: None },
    Country { alpha2: "GB", calling_code: Some(44), national_prefix: Some("0") },
    Country { alpha2: "GD", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "GE", calling_code: Some(995), national_prefix: Some("0") },
    Country { alpha2: "GF", calling_code: Some(594), national_prefix: Some("0") },
    Country { alpha2: "GG", calling_code: Some(44), national_prefix: Some("0") },
    Country { alpha2: "GH", calling_code: Some(233), national_prefix: Some("0") },
    Country { alpha2: "GI", calling_code: Some(350), national_prefix: None },
    Country { alpha2: "GL", calling_code: Some(299), national_prefix: None },
    Country { alpha2: "GM", calling_code: Some(220), national_prefix: None },
    Country { alpha2: "GN", calling_code: Some(224), national_prefix: None },
    Country { alpha2: "GP", calling_code: Some(590), national_prefix: Some("0") },
    Country { alpha2: "GQ", calling_code: Some(240), national_prefix: None },
    Country { alpha2: "GR", calling_code: Some(30), national_prefix: None },
    Country { alpha2: "GS", calling_code: None, national_prefix: None },
    Country { alpha2: "GT", calling_code: Some(502), national_prefix: None },
    Country { alpha2: "GU", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "GW", calling_code: Some(245), national_prefix: None },
    Country { alpha2: "GY", calling_code: Some(592), national_prefix: None },
    Country { alpha2: "HK", calling_code: Some(852), national_prefix: None },
    Country { alpha2: "HM", calling_code: None, national_prefix: None },
    Country { alpha2: "HN", calling_code: Some(504), national_prefix: None },
    Country { alpha2: "HR", calling_code: Some(385), national_prefix: Some("0") },
    Country { alpha2: "HT", calling_code: Some(509), national_prefix: None },
    Country { alpha2: "HU", calling_code: Some(36), national_prefix: Some("06") },
    Country { alpha2: "ID", calling_code: Some(62), national_prefix: Some("0") },
    Country { alpha2: "IE", calling_code: Some(353), national_prefix: Some("0") },
    Country { alpha2: "IL", calling_code: Some(972), national_prefix: Some("0") },
    Country { alpha2: "IM", calling_code: Some(44), national_prefix: Some("0") },
    Country { alpha2: "IN", calling_code: Some(91), national_prefix: Some("0") },
    Country { alpha2: "IO", calling_code: Some(246), national_prefix: None },
    Country { alpha2: "IQ", calling_code: Some(964), national_prefix: Some("0") },
    Country { alpha2: "IR", calling_code: Some(98), national_prefix: Some("0") },
    Country { alpha2: "IS", calling_code: Some(354), national_prefix: None },
    Country { alpha2: "IT", calling_code: Some(39), national_prefix: None },
    Country { alpha2: "JE", calling_code: Some(44), national_prefix: Some("0") },
    Country { alpha2: "JM", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "JO", calling_code: Some(962), national_prefix: Some("0") },
    Country { alpha2: "JP", calling_code: Some(81), national_prefix: Some("0") },
    Country { alpha2: "KE", calling_code: Some(254), national_prefix: Some("0") },
    Country { alpha2: "KG", calling_code: Some(996), national_prefix: Some("0") },
    Country { alpha2: "KH", calling_code: Some(855), national_prefix: Some("0") },
    Country { alpha2: "KI", calling_code: Some(686), national_prefix: Some("0") },
    Country { alpha2: "KM", calling_code: Some(269), national_prefix: None },
    Country { alpha2: "KN", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "KP", calling_code: Some(850), national_prefix: Some("0") },
    Country { alpha2: "KR", calling_code: Some(82), national_prefix: Some("0") },
    Country { alpha2: "KW", calling_code: Some(965), national_prefix: None },
    Country { alpha2: "KY", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "KZ", calling_code: Some(7), national_prefix: Some("8") },
    Country { alpha2: "LA", calling_code: Some(856), national_prefix: Some("0") },
    Country { alpha2: "LB", calling_code: Some(961), national_prefix: Some("0") },
    Country { alpha2: "LC", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "LI", calling_code: Some(423), national_prefix: Some("0") },
    Country { alpha2: "LK", calling_code: Some(94), national_prefix: Some("0") },
    Country { alpha2: "LR", calling_code: Some(231), national_prefix: Some("0") },
    Country { alpha2: "LS", calling_code: Some(266), national_prefix: None },
    Country { alpha2: "LT", calling_code: Some(370), national_prefix: Some("0") },
    Country { alpha2: "LU", calling_code: Some(352), national_prefix: None },
    Country { alpha2: "LV", calling_code: Some(371), national_prefix: None },
    Country { alpha2: "LY", calling_code: Some(218), national_prefix: Some("0") },
    Country { alpha2: "MA", calling_code: Some(212), national_prefix: Some("0") },
    Country { alpha2: "MC", calling_code: Some(377), national_prefix: Some("0") },
    Country { alpha2: "MD", calling_code: Some(373), national_prefix: Some("0") },
    Country { alpha2: "ME", calling_code: Some(382), national_prefix: Some("0") },
    Country { alpha2: "MF", calling_code: Some(590), national_prefix: Some("0") },
    Country { alpha2: "MG", calling_code: Some(261), national_prefix: Some("0") },
    Country { alpha2: "MH", calling_code: Some(692), national_prefix: Some("1") },
    Country { alpha2: "MK", calling_code: Some(389), national_prefix: Some("0") },
    Country { alpha2: "ML", calling_code: Some(223), national_prefix: None },
    Country { alpha2: "MM", calling_code: Some(95), national_prefix: Some("0") },
    Country { alpha2: "MN", calling_code: Some(976), national_prefix: Some("0") },
    Country { alpha2: "MO", calling_code: Some(853), national_prefix: None },
    Country { alpha2: "MP", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "MQ", calling_code: Some(596), national_prefix: Some("0") },
    Country { alpha2: "MR", calling_code: Some(222), national_prefix: None },
    Country { alpha2: "MS", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "MT", calling_code: Some(356), national_prefix: None },
    Country { alpha2: "MU", calling_code: Some(230), national_prefix: None },
    Country { alpha2: "MV", calling_code: Some(960), national_prefix: None },
    Country { alpha2: "MW", calling_code: Some(265), national_prefix: Some("0") },
    Country { alpha2: "MX", calling_code: Some(52), national_prefix: None },
    Country { alpha2: "MY", calling_code: Some(60), national_prefix: Some("0") },
    Country { alpha2: "MZ", calling_code: Some(258), national_prefix: None },
    Country { alpha2: "NA", calling_code: Some(264), national_prefix: Some("0") },
    Country { alpha2: "NC", calling_code: Some(687), national_prefix: None },
    Country { alpha2: "NE", calling_code: Some(227), national_prefix: None },
    Country { alpha2: "NF", calling_code: Some(672), national_prefix: None },
    Country { alpha2: "NG", calling_code: Some(234), national_prefix: Some("0") },
    Country { alpha2: "NI", calling_code: Some(505), national_prefix: None },
    Country { alpha2: "NL", calling_code: Some(31), national_prefix: Some("0") },
    Country { alpha2: "NO", calling_code: Some(47), national_prefix: None },
    Country { alpha2: "NP", calling_code: Some(977), national_prefix: Some("0") },
    Country { alpha2: "NR", calling_code: Some(674), national_prefix: None },
    Country { alpha2: "NU", calling_code: Some(683), national_prefix: None },
    Country { alpha2: "NZ", calling_code: Some(64), national_prefix: Some("0") },
    Country { alpha2: "OM", calling_code: Some(968), national_prefix: None },
    Country { alpha2: "PA", calling_code: Some(507), national_prefix: None },
    Country { alpha2: "PE", calling_code: Some(51), national_prefix: Some("0") },
    Country { alpha2: "PF", calling_code: Some(689), national_prefix: None },
    Country { alpha2: "PG", calling_code: Some(675), national_prefix: None },
    Country { alpha2: "PH", calling_code: Some(63), national_prefix: Some("0") },
    Country { alpha2: "PK", calling_code: Some(92), national_prefix: Some("0") },
    Country { alpha2: "PL", calling_code: Some(48), national_prefix: None },
    Country { alpha2: "PM", calling_code: Some(508), national_prefix: Some("0") },
    Country { alpha2: "PN", calling_code: None, national_prefix: None },
    Country { alpha2: "PR", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "PS", calling_code: Some(970), national_prefix: Some("0") },
    Country { alpha2: "PT", calling_code: Some(351), national_prefix: None },
    Country { alpha2: "PW", calling_code: Some(680), national_prefix: None },
    Country { alpha2: "PY", calling_code: Some(595), national_prefix: Some("0") },
    Country { alpha2: "QA", calling_code: Some(974), national_prefix: None },
    Country { alpha2: "RE", calling_code: Some(262), national_prefix: Some("0") },
    Country { alpha2: "RO", calling_code: Some(40), national_prefix: Some("0") },
    Country { alpha2: "RS", calling_code: Some(381), national_prefix: Some("0") },
    Country { alpha2: "RU", calling_code: Some(7), national_prefix: Some("8") },
    Country { alpha2: "RW", calling_code: Some(250), national_prefix: Some("0") },
    Country { alpha2: "SA", calling_code: Some(966), national_prefix: Some("0") },
    Country { alpha2: "SB", calling_code: Some(677), national_prefix: None },
    Country { alpha2: "SC", calling_code: Some(248), national_prefix: None },
    Country { alpha2: "SD", calling_code: Some(249), national_prefix: Some("0") },
    Country { alpha2: "SE", calling_code: Some(46), national_prefix: Some("0") },
    Country { alpha2: "SG", calling_code: Some(65), national_prefix: None },
    Country { alpha2: "SH", calling_code: Some(290), national_prefix: None },
    Country { alpha2: "SI", calling_code: Some(386), national_prefix: Some("0") },
    Country { alpha2: "SJ", calling_code: Some(47), national_prefix: None },
    Country { alpha2: "SK", calling_code: Some(421), national_prefix: Some("0") },
    Country { alpha2: "SL", calling_code: Some(232), national_prefix: Some("0") },
    Country { alpha2: "SM", calling_code: Some(378), national_prefix: None },
    Country { alpha2: "SN", calling_code: Some(221), national_prefix: None },
    Country { alpha2: "SO", calling_code: Some(252), national_prefix: Some("0") },
    Country { alpha2: "SR", calling_code: Some(597), national_prefix: None },
    Country { alpha2: "SS", calling_code: Some(211), national_prefix: Some("0") },
    Country { alpha2: "ST", calling_code: Some(239), national_prefix: None },
    Country { alpha2: "SV", calling_code: Some(503), national_prefix: None },
    Country { alpha2: "SX", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "SY", calling_code: Some(963), national_prefix: Some("0") },
    Country { alpha2: "SZ", calling_code: Some(268), national_prefix: None },
    Country { alpha2: "TC", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "TD", calling_code: Some(235), national_prefix: None },
    Country { alpha2: "TF", calling_code: None, national_prefix: None },
    Country { alpha2: "TG", calling_code: Some(228), national_prefix: None },
    Country { alpha2: "TH", calling_code: Some(66), national_prefix: Some("0") },
    Country { alpha2: "TJ", calling_code: Some(992), national_prefix: None },
    Country { alpha2: "TK", calling_code: Some(690), national_prefix: None },
    Country { alpha2: "TL", calling_code: Some(670), national_prefix: None },
    Country { alpha2: "TM", calling_code: Some(993), national_prefix: Some("8") },
    Country { alpha2: "TN", calling_code: Some(216), national_prefix: None },
    Country { alpha2: "TO", calling_code: Some(676), national_prefix: None },
    Country { alpha2: "TR", calling_code: Some(90), national_prefix: Some("0") },
    Country { alpha2: "TT", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "TV", calling_code: Some(688), national_prefix: None },
    Country { alpha2: "TW", calling_code: Some(886), national_prefix: Some("0") },
    Country { alpha2: "TZ", calling_code: Some(255), national_prefix: Some("0") },
    Country { alpha2: "UA", calling_code: Some(380), national_prefix: Some("0") },
    Country { alpha2: "UG", calling_code: Some(256), national_prefix: Some("0") },
    Country { alpha2: "UM", calling_code: None, national_prefix: None },
    Country { alpha2: "US", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "UY", calling_code: Some(598), national_prefix: Some("0") },
    Country { alpha2: "UZ", calling_code: Some(998), national_prefix: None },
    Country { alpha2: "VA", calling_code: Some(39), national_prefix: None },
    Country { alpha2: "VC", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "VE", calling_code: Some(58), national_prefix: Some("0") },
    Country { alpha2: "VG", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "VI", calling_code: Some(1), national_prefix: Some("1") },
    Country { alpha2: "VN", calling_code: Some(84), national_prefix: Some("0") },
    Country { alpha2: "VU", calling_code: Some(678), national_prefix: None },
    Country { alpha2: "WF", calling_code: Some(681), national_prefix: None },
    Country { alpha2: "WS", calling_code: Some(685), national_prefix: None },
    Country { alpha2: "YE", calling_code: Some(967), national_prefix: Some("0") },
    Country { alpha2: "YT", calling_code: Some(262), national_prefix: Some("0") },
    Country { alpha2: "ZA", calling_code: Some(27), national_prefix: Some("0") },
    Country { alpha2: "ZM", calling_code: Some(260), national_prefix: Some("0") },
    Country { alpha2: "ZW", calling_code: Some(263), national_prefix: Some("0") },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_has_calling_code_1_and_prefix_1() {
        let us = lookup("US").expect("US present");
        assert_eq!(us.alpha2, "US");
        assert_eq!(us.calling_code, Some(1));
        assert_eq!(us.national_prefix, Some("1"));
    }

    #[test]
    fn gb_has_calling_code_44_and_prefix_0() {
        let gb = lookup("GB").expect("GB present");
        assert_eq!(gb.calling_code, Some(44));
        assert_eq!(gb.national_prefix, Some("0"));
    }

    #[test]
    fn de_has_calling_code_49() {
        assert_eq!(lookup("DE").and_then(|c| c.calling_code), Some(49));
    }

    #[test]
    fn territories_without_calling_code() {
        let aq = lookup("AQ").expect("AQ is an ISO code");
        assert_eq!(aq.calling_code, None);
        assert!(!aq.owns_number("6721234567"));
    }

    #[test]
    fn lowercase_and_unknown_rejected() {
        assert_eq!(lookup("us"), None);
        assert_eq!(lookup("Gb"), None);
        assert_eq!(lookup("ZZ"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("USA"), None);
    }

    #[test]
    fn owns_number_us() {
        let us = lookup("US").unwrap();
        assert!(us.owns_number("15551234567"));
        assert!(!us.owns_number("447911123456"));
        assert!(!us.owns_number("+15551234567"));
        assert!(!us.owns_number(""));
    }

    #[test]
    fn owns_number_gb() {
        let gb = lookup("GB").unwrap();
        assert!(gb.owns_number("447911123456"));
        assert!(!gb.owns_number("15551234567"));
        assert!(!gb.owns_number("4917612345678"));
        assert!(!gb.owns_number("4"));
    }

    #[test]
    fn table_sorted_unique_and_well_formed() {
        for pair in COUNTRIES.windows(2) {
            assert!(
                pair[0].alpha2 < pair[1].alpha2,
                "{} must sort before {}",
                pair[0].alpha2,
                pair[1].alpha2
            );
        }
        for c in &COUNTRIES {
            assert_eq!(c.alpha2.len(), 2);
            assert!(c.alpha2.bytes().all(|b| b.is_ascii_uppercase()));
            assert_eq!(lookup(c.alpha2), Some(c));
            if let Some(p) = c.national_prefix {
                assert!(!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
