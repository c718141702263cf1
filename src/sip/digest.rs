//! SIP digest authentication, client side: trunkd answering a carrier's 401/407 to REGISTER
//! (RFC 3261 §22.4 and §25.1, updated by RFC 8760; algorithms and hashing from RFC 7616,
//! with RFC 2617 / RFC 2069 compatibility).
//!
//! Owns: parsing one `WWW-Authenticate` / `Proxy-Authenticate` value into a [`Challenge`]
//! borrowed from it, choosing among several ([`preferred`]), and computing the
//! `Authorization` / `Proxy-Authorization` value ([`answer`], [`Answer::header_value`]).
//!
//! Must not: do IO, read the clock or draw random numbers (the cnonce and nonce count come
//! from the caller, so every answer is reproducible); keep the password or HA1 past the call
//! that uses them; panic or do unbounded work on anything a carrier sends (see
//! [`MAX_CHALLENGE_LEN`], [`MAX_PARAMETERS`]); send credentials for a realm the operator did
//! not name. It is never the server side (no nonce minting, no verification), and it does not
//! do qop=auth-int (that would need the message body) nor hashed usernames (RFC 7616 §3.4.4
//! lets a client that does not hash omit `userhash`).

use std::borrow::Cow;

use sha2::Digest;

use crate::config::Secret;

/// Longest challenge value accepted, in bytes. Real ones are a few hundred bytes; the cap
/// bounds both the parse and the owned copies made for escaped quoted strings.
pub const MAX_CHALLENGE_LEN: usize = 4096;

/// Most parameters accepted in one challenge. RFC 7616 §3.3 defines nine; duplicates are
/// found by comparing each name with the earlier ones, so this also bounds that work.
pub const MAX_PARAMETERS: usize = 16;

/// Why a challenge could not be read or answered. `Copy`, and never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the challenge is not for the Digest scheme")]
    NotDigest,
    #[error("the Digest challenge is malformed")]
    Malformed,
    #[error("the Digest challenge is longer than {} bytes", MAX_CHALLENGE_LEN)]
    TooLong,
    #[error("the Digest challenge has more than {} parameters", MAX_PARAMETERS)]
    TooManyParameters,
    #[error("a Digest challenge parameter appears more than once")]
    DuplicateParameter,
    #[error("the Digest challenge has no realm")]
    MissingRealm,
    #[error("the Digest challenge has no nonce")]
    MissingNonce,
    #[error("the Digest challenge names an unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("the Digest challenge offers no qop trunkd supports (auth)")]
    UnsupportedQop,
    #[error("the Digest challenge names a -sess algorithm without qop, so no cnonce can be sent")]
    SessionWithoutQop,
    #[error("the Digest challenge's realm is not the configured auth_realm")]
    RealmMismatch,
    #[error("the nonce count starts at 1")]
    ZeroNonceCount,
    #[error("a value for the Digest answer contains a control character")]
    ControlCharacter,
}

/// The hash algorithms of the IANA "HTTP Digest Hash Algorithms" registry (RFC 7616 §6.1),
/// which RFC 8760 makes available to SIP (RFC 3261 alone knew only MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ];

    /// Reads the `algorithm` token, case-insensitively (RFC 7616 §3.3).
    pub fn parse(token: &str) -> Result<Self, DigestError> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str().eq_ignore_ascii_case(token))
            .ok_or(DigestError::UnsupportedAlgorithm)
    }

    /// The canonical spelling, as the registry writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The -sess variants fold the nonce and cnonce into HA1 (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Rank for [`preferred`]: a -sess variant is as strong as its base hash.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }

    /// H(part ":" part ":" ...) as lower-case hex, RFC 7616 §3.4.
    fn hash_hex(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hash_parts::<md5::Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hash_parts::<sha2::Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => {
                hash_parts::<sha2::Sha512_256>(parts)
            }
        }
    }
}

/// The `qop` options a challenge offered. Unknown tokens are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QopOptions {
    pub auth: bool,
    pub auth_int: bool,
}

/// One Digest challenge, borrowed from the header value it was parsed from. Quoted strings
/// that contained backslash escapes are the only owned parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub opaque: Option<Cow<'a, str>>,
    /// MD5 when the challenge names none (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// `None` when the challenge has no `qop` at all: the RFC 2069 form, answered without
    /// cnonce and nc.
    pub qop: Option<QopOptions>,
    /// RFC 7616 §3.3: "true", case-insensitive; anything else is false. A stale nonce means
    /// the credentials were right and only the nonce needs refreshing.
    pub stale: bool,
    /// The raw space-separated URI list, unused by trunkd (a trunk has one registrar).
    pub domain: Option<Cow<'a, str>>,
    pub userhash: bool,
}

impl Challenge<'_> {
    /// Whether [`answer`] can answer this challenge, and if not, why.
    pub fn answerable(&self) -> Result<(), DigestError> {
        match self.qop {
            // RFC 7616 §3.4: the cnonce travels only with a qop, and -sess needs the cnonce.
            None if self.algorithm.is_session() => Err(DigestError::SessionWithoutQop),
            None => Ok(()),
            Some(options) if options.auth => Ok(()),
            Some(_) => Err(DigestError::UnsupportedQop),
        }
    }
}

/// Parses one `WWW-Authenticate` or `Proxy-Authenticate` value, e.g.
/// `Digest realm="carrier.example.net", nonce="1700000000:abc", qop="auth"`.
///
/// RFC 3261 §25.1:
/// ```text
/// challenge   = ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
/// digest-cln  = realm / domain / nonce / opaque / stale / algorithm / qop-options / auth-param
/// auth-param  = auth-param-name EQUAL ( token / quoted-string )
/// COMMA = SWS "," SWS     EQUAL = SWS "=" SWS     SWS = [LWS]     LWS = [*WSP CRLF] 1*WSP
/// ```
/// Every parameter accepts a token or a quoted string, since carriers quote `algorithm` and
/// `stale` and leave `qop` bare. Unknown parameters are skipped; any parameter given twice is
/// an error (RFC 7235 §2.1: "Each parameter name MUST only occur once per challenge").
pub fn parse_challenge(value: &str) -> Result<Challenge<'_>, DigestError> {
    if value.len() > MAX_CHALLENGE_LEN {
        return Err(DigestError::TooLong);
    }
    let mut fields = Fields::default();
    parse_parameters(value, |name, value| fields.set(name, value))?;
    fields.finish()
}

/// `"Digest" LWS name=value *(COMMA name=value)`: calls `set` for each parameter; any
/// parameter given twice is an error (RFC 7235 §2.1).
fn parse_parameters<'a>(
    value: &'a str,
    mut set: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), DigestError>,
) -> Result<(), DigestError> {
    let mut cursor = Cursor::new(value);
    cursor.skip_whitespace()?;
    if !cursor.token().eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    if !cursor.skip_whitespace()? {
        return Err(DigestError::Malformed);
    }

    let mut names = [""; MAX_PARAMETERS];
    let mut count = 0;
    loop {
        let name = cursor.token();
        if name.is_empty() {
            return Err(DigestError::Malformed);
        }
        if count == MAX_PARAMETERS {
            return Err(DigestError::TooManyParameters);
        }
        if names[..count]
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(name))
        {
            return Err(DigestError::DuplicateParameter);
        }
        names[count] = name;
        count += 1;

        cursor.skip_whitespace()?;
        cursor.expect(b'=')?;
        cursor.skip_whitespace()?;
        let value = cursor.value()?;
        set(name, value)?;

        cursor.skip_whitespace()?;
        if cursor.at_end() {
            return Ok(());
        }
        cursor.expect(b',')?;
        cursor.skip_whitespace()?;
    }
}

/// The credentials of an `Authorization` / `Proxy-Authorization` value (RFC 7616 §3.4),
/// as a server checking them needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    pub algorithm: Algorithm,
    /// `Some` with qop=auth (then cnonce and nc are present).
    pub cnonce: Option<Cow<'a, str>>,
    pub nonce_count: Option<u32>,
}

/// Parses credentials; everything a check needs must be there, and `qop`, when present,
/// must be `auth` with `cnonce` and an 8-hex-digit `nc`.
pub fn parse_credentials(value: &str) -> Result<Credentials<'_>, DigestError> {
    if value.len() > MAX_CHALLENGE_LEN {
        return Err(DigestError::TooLong);
    }
    let mut username = None;
    let mut realm = None;
    let mut nonce = None;
    let mut uri = None;
    let mut response = None;
    let mut algorithm = Algorithm::Md5;
    let mut cnonce = None;
    let mut nc = None;
    let mut qop = None;
    parse_parameters(value, |name, value| {
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("username") {
            username = Some(value);
        } else if is("realm") {
            realm = Some(value);
        } else if is("nonce") {
            nonce = Some(value);
        } else if is("uri") {
            uri = Some(value);
        } else if is("response") {
            response = Some(value);
        } else if is("algorithm") {
            algorithm = Algorithm::parse(&value)?;
        } else if is("cnonce") {
            cnonce = Some(value);
        } else if is("nc") {
            let count = (value.len() == 8)
                .then(|| u32::from_str_radix(&value, 16).ok())
                .flatten()
                .ok_or(DigestError::Malformed)?;
            nc = Some(count);
        } else if is("qop") {
            qop = Some(value);
        }
        Ok(())
    })?;
    let with_qop = match qop {
        None => false,
        Some(qop) if qop.eq_ignore_ascii_case("auth") => true,
        Some(_) => return Err(DigestError::UnsupportedQop),
    };
    if with_qop != (cnonce.is_some() && nc.is_some()) || (!with_qop && algorithm.is_session()) {
        return Err(DigestError::Malformed);
    }
    Ok(Credentials {
        username: username.ok_or(DigestError::Malformed)?,
        realm: realm.ok_or(DigestError::MissingRealm)?,
        nonce: nonce.ok_or(DigestError::MissingNonce)?,
        uri: uri.ok_or(DigestError::Malformed)?,
        response: response.ok_or(DigestError::Malformed)?,
        algorithm,
        cnonce: if with_qop { cnonce } else { None },
        nonce_count: if with_qop { nc } else { None },
    })
}

impl Credentials<'_> {
    /// Whether `response` is right for `password` and `method` (RFC 7616 §3.4.1). The
    /// comparison looks at every byte, so its time does not tell how much matched.
    pub fn verify(&self, password: &Secret, method: &str) -> bool {
        let algorithm = self.algorithm;
        let mut ha1 = algorithm.hash_hex(&[&self.username, &self.realm, password.expose()]);
        if algorithm.is_session() {
            let Some(cnonce) = &self.cnonce else {
                return false;
            };
            ha1 = algorithm.hash_hex(&[&ha1, &self.nonce, cnonce]);
        }
        let ha2 = algorithm.hash_hex(&[method, &self.uri]);
        let expected = match (&self.cnonce, self.nonce_count) {
            (Some(cnonce), Some(nc)) => {
                let nc = format!("{nc:08x}");
                algorithm.hash_hex(&[&ha1, &self.nonce, &nc, cnonce, "auth", &ha2])
            }
            _ => algorithm.hash_hex(&[&ha1, &self.nonce, &ha2]),
        };
        let given = self.response.as_bytes();
        let expected = expected.as_bytes();
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a.to_ascii_lowercase() ^ b))
                == 0
    }
}

/// Picks the challenge to answer when a server sends several: the strongest algorithm among
/// those [`answer`] can handle, the earliest one on a tie.
///
/// RFC 8760 §2.4 (and RFC 7616 §3.7) say the client SHOULD use the topmost challenge it
/// supports "unless a local policy dictates otherwise". This is that local policy: challenges
/// are not integrity-protected, so an on-path attacker could reorder them to put MD5 on top
/// (the downgrade RFC 8760 §3 warns of). Ties keep the server's order.
pub fn preferred<'a>(challenges: impl IntoIterator<Item = Challenge<'a>>) -> Option<Challenge<'a>> {
    let mut best: Option<Challenge<'a>> = None;
    for challenge in challenges {
        if challenge.answerable().is_err() {
            continue;
        }
        let stronger = best
            .as_ref()
            .is_none_or(|current| challenge.algorithm.strength() > current.algorithm.strength());
        if stronger {
            best = Some(challenge);
        }
    }
    best
}

/// What trunkd sends back: everything [`Answer::header_value`] needs and nothing secret.
/// Neither the password nor HA1 is stored, so `Debug` cannot leak them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    username: String,
    realm: String,
    nonce: String,
    digest_uri: String,
    response: String,
    algorithm: Algorithm,
    opaque: Option<String>,
    /// Set when the challenge offered qop, so the answer carries qop=auth, cnonce and nc.
    protection: Option<QopAuth>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct QopAuth {
    cnonce: String,
    nonce_count: u32,
}

/// Computes the digest response to `challenge` per RFC 7616 §3.4, for the request `method`
/// whose Request-URI is `digest_uri` (RFC 3261 §22.4).
///
/// `cnonce` and `nonce_count` come from the caller: the count is of requests sent with this
/// nonce, starting at 1 (RFC 7616 §3.4). `realm_override` is the trunk's configured
/// `auth_realm`; when set, a challenge for any other realm is refused rather than answered,
/// so the password only ever goes to the realm the operator named. Realms compare exactly
/// (RFC 2617 §1.2: the realm value is case-sensitive).
#[expect(
    clippy::too_many_arguments,
    reason = "each is a distinct input of the RFC 7616 §3.4 computation"
)]
pub fn answer(
    challenge: &Challenge<'_>,
    username: &str,
    password: &Secret,
    method: &str,
    digest_uri: &str,
    cnonce: &str,
    nonce_count: u32,
    realm_override: Option<&str>,
) -> Result<Answer, DigestError> {
    challenge.answerable()?;
    if let Some(realm) = realm_override
        && realm != challenge.realm
    {
        return Err(DigestError::RealmMismatch);
    }
    if nonce_count == 0 {
        return Err(DigestError::ZeroNonceCount);
    }
    // Everything here is echoed inside quoted strings; a CR or LF would end the header line.
    let mut echoed = [
        username,
        digest_uri,
        cnonce,
        method,
        &challenge.realm,
        &challenge.nonce,
    ]
    .into_iter()
    .chain(challenge.opaque.as_deref());
    if echoed.any(has_control) {
        return Err(DigestError::ControlCharacter);
    }

    let algorithm = challenge.algorithm;
    let nonce: &str = &challenge.nonce;
    let nc = nonce_count_hex(nonce_count);

    // RFC 7616 §3.4.2: A1 = unq(username) ":" unq(realm) ":" passwd
    let mut ha1 = algorithm.hash_hex(&[username, &challenge.realm, password.expose()]);
    if algorithm.is_session() {
        // RFC 7616 §3.4.2: for -sess, A1 = H(unq(username) ":" unq(realm) ":" passwd)
        //   ":" unq(nonce-prime) ":" unq(cnonce-prime), where H(...) is the lower-case hex
        // string. RFC 2617 §3.2.2.2 writes the same formula, but its reference code (§5,
        // DigestCalcHA1) fed the 16 raw MD5 bytes instead of the 32 hex characters; servers
        // following RFC 7616 and RFC 8760 use the hex form, as here.
        ha1 = algorithm.hash_hex(&[&ha1, nonce, cnonce]);
    }
    // RFC 7616 §3.4.3: A2 = Method ":" request-uri, for qop=auth or no qop.
    let ha2 = algorithm.hash_hex(&[method, digest_uri]);
    let response = match challenge.qop {
        // RFC 7616 §3.4.1: response = KD(H(A1), unq(nonce) ":" nc ":" unq(cnonce) ":"
        //   unq(qop) ":" H(A2)), with KD(secret, data) = H(secret ":" data).
        Some(_) => algorithm.hash_hex(&[&ha1, nonce, &nc, cnonce, "auth", &ha2]),
        // RFC 2069 §2.1.2, kept by RFC 2617 §3.2.2.1 for servers that send no qop:
        //   response = KD(H(A1), unq(nonce) ":" H(A2)).
        None => algorithm.hash_hex(&[&ha1, nonce, &ha2]),
    };

    Ok(Answer {
        username: username.to_owned(),
        realm: challenge.realm.clone().into_owned(),
        nonce: nonce.to_owned(),
        digest_uri: digest_uri.to_owned(),
        response,
        algorithm,
        opaque: challenge
            .opaque
            .as_ref()
            .map(|opaque| opaque.clone().into_owned()),
        protection: challenge.qop.map(|_| QopAuth {
            cnonce: cnonce.to_owned(),
            nonce_count,
        }),
    })
}

impl Answer {
    /// The request-digest, lower-case hex.
    pub fn response(&self) -> &str {
        &self.response
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `Authorization` / `Proxy-Authorization` value. `algorithm`, `qop` and `nc` are
    /// never quoted (RFC 7616 §3.4: "For historical reasons, a sender MUST NOT generate the
    /// quoted string syntax" for them); the rest are quoted strings with `"` and `\` escaped
    /// (RFC 3261 §25.1 quoted-pair).
    pub fn header_value(&self) -> String {
        let mut header = String::new();
        self.write_header_value(&mut header);
        header
    }

    /// [`Answer::header_value`], written at the end of `header` (after a header name).
    pub fn write_header_value(&self, header: &mut String) {
        let quoted = [
            &self.username,
            &self.realm,
            &self.nonce,
            &self.digest_uri,
            &self.response,
        ];
        let opaque = self.opaque.as_ref().map_or(0, String::len);
        let cnonce = self.protection.as_ref().map_or(0, |p| p.cnonce.len());
        // The values, their names and punctuation (about 110 bytes), and an escape or two.
        header
            .reserve(quoted.iter().map(|value| value.len()).sum::<usize>() + opaque + cnonce + 128);
        header.push_str("Digest ");
        push_quoted(header, "username", &self.username);
        push_quoted(header, "realm", &self.realm);
        push_quoted(header, "nonce", &self.nonce);
        push_quoted(header, "uri", &self.digest_uri);
        push_quoted(header, "response", &self.response);
        push_token(header, "algorithm", self.algorithm.as_str());
        if let Some(protection) = &self.protection {
            push_quoted(header, "cnonce", &protection.cnonce);
        }
        if let Some(opaque) = &self.opaque {
            push_quoted(header, "opaque", opaque);
        }
        if let Some(protection) = &self.protection {
            push_token(header, "qop", "auth");
            push_token(header, "nc", &nonce_count_hex(protection.nonce_count));
        }
    }
}

/// Known parameters seen so far; [`parse_challenge`] has already refused duplicates.
#[derive(Default)]
struct Fields<'a> {
    realm: Option<Cow<'a, str>>,
    nonce: Option<Cow<'a, str>>,
    opaque: Option<Cow<'a, str>>,
    algorithm: Option<Algorithm>,
    qop: Option<QopOptions>,
    stale: bool,
    domain: Option<Cow<'a, str>>,
    userhash: bool,
}

impl<'a> Fields<'a> {
    fn set(&mut self, name: &str, value: Cow<'a, str>) -> Result<(), DigestError> {
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("realm") {
            self.realm = Some(value);
        } else if is("nonce") {
            self.nonce = Some(value);
        } else if is("opaque") {
            self.opaque = Some(value);
        } else if is("algorithm") {
            self.algorithm = Some(Algorithm::parse(&value)?);
        } else if is("qop") {
            self.qop = Some(parse_qop_options(&value));
        } else if is("stale") {
            self.stale = value.eq_ignore_ascii_case("true");
        } else if is("domain") {
            self.domain = Some(value);
        } else if is("userhash") {
            self.userhash = value.eq_ignore_ascii_case("true");
        }
        // Anything else (charset, RFC 3261's auth-param extensions) is not ours to interpret.
        Ok(())
    }

    fn finish(self) -> Result<Challenge<'a>, DigestError> {
        Ok(Challenge {
            realm: self.realm.ok_or(DigestError::MissingRealm)?,
            nonce: self.nonce.ok_or(DigestError::MissingNonce)?,
            opaque: self.opaque,
            algorithm: self.algorithm.unwrap_or(Algorithm::Md5),
            qop: self.qop,
            stale: self.stale,
            domain: self.domain,
            userhash: self.userhash,
        })
    }
}

/// RFC 3261 §25.1: qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
fn parse_qop_options(list: &str) -> QopOptions {
    let mut options = QopOptions::default();
    for option in list
        .split(',')
        .map(|option| option.trim_matches([' ', '\t']))
    {
        if option.eq_ignore_ascii_case("auth") {
            options.auth = true;
        } else if option.eq_ignore_ascii_case("auth-int") {
            options.auth_int = true;
        }
    }
    options
}

/// RFC 3261 §25.1:
/// ```text
/// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
/// ```
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut index = 0;
    while index < 256 {
        let byte = index as u8;
        table[index] = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        index += 1;
    }
    table
};

/// A position in the challenge text. Every slice it cuts is at an ASCII byte, so always on
/// a `char` boundary.
struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, position: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.text.as_bytes().get(self.position + offset).copied()
    }

    fn at_end(&self) -> bool {
        self.position == self.text.len()
    }

    fn expect(&mut self, byte: u8) -> Result<(), DigestError> {
        if self.peek() == Some(byte) {
            self.position += 1;
            Ok(())
        } else {
            Err(DigestError::Malformed)
        }
    }

    /// Skips SWS, i.e. spaces, tabs and folds (`LWS = [*WSP CRLF] 1*WSP`). A CR that does not
    /// start a fold would end the header, so it is malformed here. Returns whether anything
    /// was skipped.
    fn skip_whitespace(&mut self) -> Result<bool, DigestError> {
        let start = self.position;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.position += 1,
                Some(b'\r') => {
                    let fold = self.peek_at(1) == Some(b'\n')
                        && matches!(self.peek_at(2), Some(b' ' | b'\t'));
                    if !fold {
                        return Err(DigestError::Malformed);
                    }
                    self.position += 3;
                }
                _ => return Ok(self.position > start),
            }
        }
    }

    /// The longest run of token characters here, possibly empty.
    fn token(&mut self) -> &'a str {
        let start = self.position;
        while self.peek().is_some_and(|byte| TOKEN[usize::from(byte)]) {
            self.position += 1;
        }
        &self.text[start..self.position]
    }

    /// A parameter value: `token / quoted-string`.
    fn value(&mut self) -> Result<Cow<'a, str>, DigestError> {
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        match self.token() {
            "" => Err(DigestError::Malformed),
            token => Ok(Cow::Borrowed(token)),
        }
    }

    /// RFC 3261 §25.1:
    /// ```text
    /// quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    /// qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
    /// quoted-pair   = "\" (%x00-09 / %x0B-0C / %x0E-7F)
    /// ```
    /// Borrowed unless it holds an escape. Stricter than the grammar in two ways, because the
    /// value is echoed back in our own header: a fold inside the quotes is refused, and so is
    /// an escaped control character other than tab.
    fn quoted_string(&mut self) -> Result<Cow<'a, str>, DigestError> {
        self.expect(b'"')?;
        let mut unescaped: Option<String> = None;
        let mut segment_start = self.position;
        while let Some(byte) = self.peek() {
            match byte {
                b'"' => {
                    let tail = &self.text[segment_start..self.position];
                    self.position += 1;
                    return Ok(match unescaped {
                        None => Cow::Borrowed(tail),
                        Some(mut owned) => {
                            owned.push_str(tail);
                            Cow::Owned(owned)
                        }
                    });
                }
                b'\\' => {
                    let escaped = self.peek_at(1).ok_or(DigestError::Malformed)?;
                    let allowed =
                        escaped == b'\t' || (escaped.is_ascii() && !escaped.is_ascii_control());
                    if !allowed {
                        return Err(DigestError::Malformed);
                    }
                    let owned = unescaped.get_or_insert_with(String::new);
                    owned.push_str(&self.text[segment_start..self.position]);
                    owned.push(char::from(escaped));
                    self.position += 2;
                    segment_start = self.position;
                }
                b' ' | b'\t' | 0x21..=0x7e | 0x80..=0xff => self.position += 1,
                _ => return Err(DigestError::Malformed),
            }
        }
        // The closing quote never came.
        Err(DigestError::Malformed)
    }
}

fn has_control(text: &str) -> bool {
    text.bytes()
        .any(|byte| byte.is_ascii_control() && byte != b'\t')
}

/// Every parameter but the first follows a comma (RFC 3261 §25.1 `COMMA`).
fn push_separator(header: &mut String) {
    if !header.ends_with("Digest ") {
        header.push_str(", ");
    }
}

fn push_quoted(header: &mut String, name: &str, value: &str) {
    push_separator(header);
    header.push_str(name);
    header.push_str("=\"");
    // Nearly every value has nothing to escape: copied whole.
    if memchr::memchr2(b'"', b'\\', value.as_bytes()).is_none() {
        header.push_str(value);
    } else {
        for character in value.chars() {
            if matches!(character, '"' | '\\') {
                header.push('\\');
            }
            header.push(character);
        }
    }
    header.push('"');
}

/// `nc`: the nonce count as 8 lower-case hex digits (RFC 7616 §3.4).
fn nonce_count_hex(count: u32) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..8)
        .rev()
        .map(|nibble| char::from(DIGITS[((count >> (nibble * 4)) & 0xf) as usize]))
        .collect()
}

fn push_token(header: &mut String, name: &str, value: &str) {
    push_separator(header);
    header.push_str(name);
    header.push('=');
    header.push_str(value);
}

/// H(parts joined by ":"), hashed piece by piece so the joined text (which holds the
/// password for HA1) is never built.
fn hash_parts<H: Digest>(parts: &[&str]) -> String {
    let mut hasher = H::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    lower_hex(&hasher.finalize())
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1 (password with a lower-case "of", per verified erratum 4495).
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn rfc7616_challenge(algorithm: &str) -> String {
        format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
        )
    }

    fn rfc7616_answer(algorithm: &str) -> Answer {
        let header = rfc7616_challenge(algorithm);
        let challenge = parse_challenge(&header).unwrap();
        answer(
            &challenge,
            "Mufasa",
            &Secret::new("Circle of Life"),
            "GET",
            "/dir/index.html",
            RFC7616_CNONCE,
            1,
            None,
        )
        .unwrap()
    }

    /// The SIP-shaped inputs of the independently computed vectors below.
    fn carrier_answer(algorithm: &str) -> Answer {
        let header = format!(
            "Digest realm=\"carrier.example.net\", nonce=\"1700000000:abc\", \
             algorithm={algorithm}, qop=\"auth\""
        );
        let challenge = parse_challenge(&header).unwrap();
        answer(
            &challenge,
            "trunk01",
            &Secret::new("s3cret"),
            "REGISTER",
            "sip:carrier.example.net",
            "0a4f113b",
            1,
            None,
        )
        .unwrap()
    }

    /// Answers a REGISTER with fixed values, for tests about something other than the hash.
    fn register_answer(
        challenge: &Challenge<'_>,
        username: &str,
        nonce_count: u32,
    ) -> Result<Answer, DigestError> {
        answer(
            challenge,
            username,
            &Secret::new("p"),
            "REGISTER",
            "sip:x",
            "c",
            nonce_count,
            None,
        )
    }

    #[test]
    fn rfc7616_md5_example() {
        assert_eq!(
            rfc7616_answer("MD5").response(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_sha256_example() {
        assert_eq!(
            rfc7616_answer("SHA-256").response(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_md5_example() {
        // RFC 2617 §3.5 (password "Circle Of Life", capital O).
        let challenge = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let answer = answer(
            &challenge,
            "Mufasa",
            &Secret::new("Circle Of Life"),
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
            None,
        )
        .unwrap();
        assert_eq!(answer.response(), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn md5_sess_hashes_hex_ha1_with_nonce_and_cnonce() {
        // Python 3 hashlib:
        //   inner = md5(b"trunk01:carrier.example.net:s3cret").hexdigest()
        //   ha1   = md5(f"{inner}:1700000000:abc:0a4f113b".encode()).hexdigest()
        //         = "96e7434d7d23e24ac863442eda051a2a"
        //   ha2   = md5(b"REGISTER:sip:carrier.example.net").hexdigest()
        //   md5(f"{ha1}:1700000000:abc:00000001:0a4f113b:auth:{ha2}".encode()).hexdigest()
        //         = "8c781089f18d45dfdc2dfcb6ac4009a3"
        // (RFC 2617's binary-HA1 reading would give "9f0f151de74866c6200e8d9a384a57cb".)
        let answer = carrier_answer("md5-SESS");
        assert_eq!(answer.algorithm(), Algorithm::Md5Sess);
        assert_eq!(answer.response(), "8c781089f18d45dfdc2dfcb6ac4009a3");
    }

    #[test]
    fn sha512_256_matches_independent_computation() {
        // Python 3 hashlib, h = lambda s: hashlib.new("sha512_256", s.encode()).hexdigest():
        //   ha1 = h("trunk01:carrier.example.net:s3cret")
        //   ha2 = h("REGISTER:sip:carrier.example.net")
        //   h(f"{ha1}:1700000000:abc:00000001:0a4f113b:auth:{ha2}")
        assert_eq!(
            carrier_answer("SHA-512-256").response(),
            "4617e874be6e3de26bd49463629407986a116955e5e18fe875c2e41360bbeb8b"
        );
        // Same, with ha1 = h(f"{ha1}:1700000000:abc:0a4f113b") for the -sess variant.
        assert_eq!(
            carrier_answer("SHA-512-256-sess").response(),
            "02d2e379097e212cf304db176de1bb7123b3a4f2168890a063682370f935582e"
        );
    }

    #[test]
    fn no_qop_uses_rfc2069_form_and_omits_cnonce_qop_nc() {
        // RFC 2069's example inputs (password "CircleOfLife"). Expected value from
        // Python 3 hashlib: md5(f"{md5('Mufasa:testrealm@host.com:CircleOfLife')}:
        //   dcd98b7102dd2f0e8b11d0f600bfb0c093:{md5('GET:/dir/index.html')}").
        let challenge = parse_challenge(
            "Digest realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(challenge.qop, None);
        let answer = answer(
            &challenge,
            "Mufasa",
            &Secret::new("CircleOfLife"),
            "GET",
            "/dir/index.html",
            "ignored-without-qop",
            1,
            None,
        )
        .unwrap();
        assert_eq!(answer.response(), "1949323746fe6a43ef61f9606e7febea");
        assert_eq!(
            answer.header_value(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"1949323746fe6a43ef61f9606e7febea\", algorithm=MD5, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    #[test]
    fn header_value_exact() {
        assert_eq!(
            rfc7616_answer("MD5").header_value(),
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", uri=\"/dir/index.html\", \
             response=\"8ca523f5e9506fed4657c9700eebdbec\", algorithm=MD5, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", qop=auth, nc=00000001"
        );
    }

    #[test]
    fn nonce_count_is_eight_lower_case_hex_digits() {
        let challenge = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        let answer = register_answer(&challenge, "u", 10).unwrap();
        assert!(answer.header_value().ends_with(", qop=auth, nc=0000000a"));
        // The hashed nc is the same lower-case text. Python 3 hashlib, h = md5 hexdigest:
        //   h(f"{h('u:r:p')}:n:0000000a:c:auth:{h('REGISTER:sip:x')}")
        assert_eq!(answer.response(), "b50cdaf69cb871c40321d41bdce33f92");
        let zero = register_answer(&challenge, "u", 0);
        assert_eq!(zero, Err(DigestError::ZeroNonceCount));
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_in_header() {
        let challenge = parse_challenge(r#"Digest realm="a\"b", nonce="n\\m""#).unwrap();
        let answer = register_answer(&challenge, "we\"ird", 1).unwrap();
        let expected = format!(
            r#"Digest username="we\"ird", realm="a\"b", nonce="n\\m", uri="sip:x", response="{}", algorithm=MD5"#,
            answer.response()
        );
        assert_eq!(answer.header_value(), expected);
    }

    #[test]
    fn debug_of_answer_has_no_password() {
        let answer = rfc7616_answer("SHA-256");
        let debug = format!("{answer:?}");
        assert!(!debug.contains("Circle of Life"), "{debug}");
        assert!(debug.contains("753927fa"), "{debug}");
    }

    #[test]
    fn carrier_401_challenge_parsed() {
        let challenge = parse_challenge(
            "Digest realm=\"carrier.example.net\", nonce=\"1700000000:abc\", algorithm=MD5, \
             qop=\"auth,auth-int\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(
            challenge,
            Challenge {
                realm: Cow::Borrowed("carrier.example.net"),
                nonce: Cow::Borrowed("1700000000:abc"),
                opaque: Some(Cow::Borrowed("5ccc069c403ebaf9f0171e9517f40e41")),
                algorithm: Algorithm::Md5,
                qop: Some(QopOptions {
                    auth: true,
                    auth_int: true
                }),
                stale: false,
                domain: None,
                userhash: false,
            }
        );
        assert!(matches!(challenge.realm, Cow::Borrowed(_)));
    }

    #[test]
    fn compact_whitespace_parsed() {
        let challenge =
            parse_challenge("digest realm=\"r\",nonce=n1,qop=auth,algorithm=\"sha-256\"").unwrap();
        assert_eq!(challenge.realm, "r");
        assert_eq!(challenge.nonce, "n1");
        assert_eq!(challenge.algorithm, Algorithm::Sha256);
        assert_eq!(
            challenge.qop.map(|qop| (qop.auth, qop.auth_int)),
            Some((true, false))
        );
    }

    #[test]
    fn folded_whitespace_parsed() {
        let challenge =
            parse_challenge("Digest\r\n realm=\"r\"\r\n\t,\r\n nonce = \"n\" ,\tstale=TRUE\r\n  ")
                .unwrap();
        assert_eq!(
            (&*challenge.realm, &*challenge.nonce, challenge.stale),
            ("r", "n", true)
        );
        // A CRLF not followed by whitespace would end the header line: not a fold.
        assert_eq!(
            parse_challenge("Digest realm=\"r\",\r\nnonce=\"n\""),
            Err(DigestError::Malformed)
        );
        // Nor may a line break hide inside a quoted string we would echo back.
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"a\r\n b\""),
            Err(DigestError::Malformed)
        );
    }

    #[test]
    fn escaped_quote_in_realm_is_unescaped() {
        let challenge = parse_challenge(r#"Digest realm="say \"hi\"", nonce="n""#).unwrap();
        assert_eq!(challenge.realm, "say \"hi\"");
        assert!(matches!(challenge.realm, Cow::Owned(_)));
        assert!(matches!(challenge.nonce, Cow::Borrowed(_)));
        // The hash is over the unescaped realm (RFC 7616 §3.4.2 "unq(realm)").
        let escaped = register_answer(&challenge, "u", 1).unwrap();
        let plain = parse_challenge("Digest realm=\"say 'hi'\", nonce=\"n\"").unwrap();
        let plain = register_answer(&plain, "u", 1).unwrap();
        assert_ne!(escaped.response(), plain.response());
        assert_eq!(
            escaped.response(),
            Algorithm::Md5.hash_hex(&[
                &Algorithm::Md5.hash_hex(&["u", "say \"hi\"", "p"]),
                "n",
                &Algorithm::Md5.hash_hex(&["REGISTER", "sip:x"]),
            ])
        );
    }

    #[test]
    fn stale_true_parsed_case_insensitively() {
        for (header, stale) in [
            ("Digest realm=\"r\", nonce=\"n\", stale=true", true),
            ("Digest realm=\"r\", nonce=\"n\", stale=\"TRUE\"", true),
            ("Digest realm=\"r\", nonce=\"n\", stale=FALSE", false),
            ("Digest realm=\"r\", nonce=\"n\", stale=yes", false),
            ("Digest realm=\"r\", nonce=\"n\"", false),
        ] {
            assert_eq!(parse_challenge(header).unwrap().stale, stale, "{header}");
        }
    }

    #[test]
    fn domain_and_userhash_parsed() {
        let challenge = parse_challenge(
            "Digest realm=\"r\", nonce=\"n\", domain=\"sip:a.example sip:b.example\", userhash=True",
        )
        .unwrap();
        assert_eq!(
            challenge.domain.as_deref(),
            Some("sip:a.example sip:b.example")
        );
        assert!(challenge.userhash);
    }

    #[test]
    fn missing_realm_or_nonce_is_an_error() {
        assert_eq!(
            parse_challenge("Digest realm=\"r\", qop=\"auth\""),
            Err(DigestError::MissingNonce)
        );
        assert_eq!(
            parse_challenge("Digest nonce=\"n\""),
            Err(DigestError::MissingRealm)
        );
    }

    #[test]
    fn duplicate_parameter_is_an_error() {
        assert_eq!(
            parse_challenge("Digest realm=\"a\", nonce=\"n\", REALM=\"b\""),
            Err(DigestError::DuplicateParameter)
        );
        assert_eq!(
            parse_challenge("Digest realm=\"a\", nonce=\"n\", x-foo=1, X-Foo=2"),
            Err(DigestError::DuplicateParameter)
        );
    }

    #[test]
    fn non_digest_scheme_is_refused() {
        for header in [
            "Basic realm=\"r\"",
            "Digestrealm=\"r\", nonce=\"n\"",
            "",
            "NTLM",
        ] {
            assert_eq!(
                parse_challenge(header),
                Err(DigestError::NotDigest),
                "{header:?}"
            );
        }
        assert_eq!(parse_challenge("Digest"), Err(DigestError::Malformed));
    }

    #[test]
    fn unknown_params_ignored() {
        let challenge = parse_challenge(
            "Digest charset=UTF-8, realm=\"r\", x-carrier=\"a, b=c\", nonce=\"n\", foo=bar",
        )
        .unwrap();
        assert_eq!((&*challenge.realm, &*challenge.nonce), ("r", "n"));
    }

    #[test]
    fn malformed_syntax_is_refused() {
        for header in [
            "Digest realm=\"r\", nonce=\"n",        // unterminated quote
            "Digest realm=\"r\" nonce=\"n\"",       // missing comma
            "Digest realm=\"r\",, nonce=\"n\"",     // empty element
            "Digest realm=\"r\", nonce=",           // missing value
            "Digest realm=\"r\", nonce=\"n\",",     // trailing comma
            "Digest realm=\"r\", nonce=\"n\\\"",    // escape swallows the closing quote
            "Digest realm=\"a\x01b\", nonce=\"n\"", // control character
            "Digest realm=\"r\", nonce=\"n\"\r",    // lone CR
        ] {
            assert_eq!(
                parse_challenge(header),
                Err(DigestError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn oversized_input_rejected() {
        let huge = format!(
            "Digest realm=\"r\", nonce=\"{}\"",
            "a".repeat(MAX_CHALLENGE_LEN)
        );
        assert_eq!(parse_challenge(&huge), Err(DigestError::TooLong));

        let many: String = (0..MAX_PARAMETERS)
            .map(|index| format!(", p{index}=1"))
            .collect();
        let header = format!("Digest realm=\"r\", nonce=\"n\"{many}");
        assert!(header.len() <= MAX_CHALLENGE_LEN);
        assert_eq!(
            parse_challenge(&header),
            Err(DigestError::TooManyParameters)
        );
    }

    #[test]
    fn algorithm_tokens_parse_case_insensitively() {
        for (token, algorithm) in [
            ("MD5", Algorithm::Md5),
            ("md5-sess", Algorithm::Md5Sess),
            ("sha-256", Algorithm::Sha256),
            ("SHA-256-SESS", Algorithm::Sha256Sess),
            ("Sha-512-256", Algorithm::Sha512_256),
            ("SHA-512-256-sess", Algorithm::Sha512_256Sess),
        ] {
            assert_eq!(Algorithm::parse(token), Ok(algorithm), "{token}");
            let header = format!("Digest realm=\"r\", nonce=\"n\", algorithm={token}");
            assert_eq!(parse_challenge(&header).unwrap().algorithm, algorithm);
        }
        // RFC 7616 §3.3: absent means MD5.
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\"")
                .unwrap()
                .algorithm,
            Algorithm::Md5
        );
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"),
            Err(DigestError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn unanswerable_qop_is_refused() {
        let only_auth_int =
            parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").unwrap();
        assert_eq!(
            register_answer(&only_auth_int, "u", 1),
            Err(DigestError::UnsupportedQop)
        );
        let sess_without_qop =
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess").unwrap();
        assert_eq!(
            register_answer(&sess_without_qop, "u", 1),
            Err(DigestError::SessionWithoutQop)
        );
    }

    #[test]
    fn realm_override_mismatch_is_refused() {
        let header = rfc7616_challenge("MD5");
        let challenge = parse_challenge(&header).unwrap();
        let password = Secret::new("Circle of Life");
        let answer_for = |realm| {
            answer(
                &challenge,
                "Mufasa",
                &password,
                "GET",
                "/dir/index.html",
                RFC7616_CNONCE,
                1,
                Some(realm),
            )
        };
        assert_eq!(answer_for("evil.example"), Err(DigestError::RealmMismatch));
        // Realms are case-sensitive (RFC 2617 §1.2).
        assert_eq!(
            answer_for("HTTP-AUTH@example.org"),
            Err(DigestError::RealmMismatch)
        );
        assert_eq!(
            answer_for("http-auth@example.org").unwrap().response(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn control_characters_in_our_values_are_refused() {
        let challenge = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        assert_eq!(
            register_answer(&challenge, "u\r\nX: y", 1),
            Err(DigestError::ControlCharacter)
        );
    }

    #[test]
    fn preferred_picks_sha256_over_md5() {
        let md5 = rfc7616_challenge("MD5");
        let sha256 = rfc7616_challenge("SHA-256");
        let challenges = [&md5, &sha256].map(|header| parse_challenge(header).unwrap());
        assert_eq!(preferred(challenges).unwrap().algorithm, Algorithm::Sha256);
    }

    #[test]
    fn preferred_ranks_sess_with_base_and_skips_unanswerable() {
        let headers = [
            "Digest realm=\"r\", nonce=\"1\", qop=auth, algorithm=SHA-256-sess",
            "Digest realm=\"r\", nonce=\"2\", qop=auth, algorithm=SHA-256",
            "Digest realm=\"r\", nonce=\"3\", qop=auth-int, algorithm=SHA-512-256",
            "Digest realm=\"r\", nonce=\"4\", qop=auth, algorithm=MD5",
        ];
        let chosen = preferred(headers.map(|header| parse_challenge(header).unwrap())).unwrap();
        // SHA-512-256 offers only auth-int; the two SHA-256 ones tie, the first wins.
        assert_eq!(chosen.nonce, "1");
        assert_eq!(preferred(Vec::new()), None);
    }

    #[test]
    fn every_prefix_and_mutation_of_a_header_is_handled() {
        let header = "Digest realm=\"carrier.\\\"example\\\".net\",\r\n nonce=\"1700000000:abc\", \
                      algorithm=SHA-256-sess, qop=\"auth,auth-int\", stale=\"true\", \
                      domain=\"sip:a sip:b\", opaque=\"5ccc069c\", charset=UTF-8, userhash=false";
        assert!(parse_challenge(header).is_ok());
        let bytes = header.as_bytes();
        for end in 0..=bytes.len() {
            if let Ok(prefix) = std::str::from_utf8(&bytes[..end]) {
                let _ = parse_challenge(prefix);
            }
        }
        for index in 0..bytes.len() {
            for replacement in [b'"', b'\\', b'\r', b'\n', b',', b'=', b' ', 0] {
                let mut mutated = bytes.to_vec();
                mutated[index] = replacement;
                if let Ok(text) = std::str::from_utf8(&mutated)
                    && let Ok(challenge) = parse_challenge(text)
                    && let Ok(answer) = register_answer(&challenge, "u", 1)
                {
                    // Whatever got through must not be able to break our header line.
                    let value = answer.header_value();
                    assert!(!value.contains(['\r', '\n', '\0']), "{value:?}");
                }
            }
        }
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_in_the_answer_and_nothing_else() {
        let challenge = parse_challenge(r#"Digest realm="a\"b\\c", nonce="plain", qop=auth"#)
            .expect("a challenge");
        assert_eq!(challenge.realm, "a\"b\\c");
        let password = Secret::new("pw");
        let answer = answer(
            &challenge, "us\"er", &password, "INVITE", "sip:x@y", "cn", 10, None,
        )
        .expect("an answer");
        let value = answer.header_value();
        assert!(value.contains(r#"username="us\"er""#), "{value}");
        assert!(value.contains(r#"realm="a\"b\\c""#), "{value}");
        assert!(value.contains(r#"nonce="plain""#), "{value}");
        assert!(value.ends_with("qop=auth, nc=0000000a"), "{value}");
        let mut line = String::from("Proxy-Authorization: ");
        answer.write_header_value(&mut line);
        assert_eq!(line, format!("Proxy-Authorization: {value}"));
    }

    #[test]
    fn lower_hex_encodes_every_nibble() {
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        for count in [0, 1, 0xa5, 0x1234_abcd, u32::MAX] {
            assert_eq!(nonce_count_hex(count), format!("{count:08x}"));
        }
    }
    #[test]
    fn credentials_round_trip_and_verify() {
        let password = Secret::new("s3cret");
        for (algorithm, qop) in [
            ("MD5", true),
            ("MD5-sess", true),
            ("SHA-256", true),
            ("SHA-256-sess", true),
            ("MD5", false),
        ] {
            let header = if qop {
                format!(
                    "Digest realm=\"trunkd\", nonce=\"n1\", algorithm={algorithm}, qop=\"auth\""
                )
            } else {
                format!("Digest realm=\"trunkd\", nonce=\"n1\", algorithm={algorithm}")
            };
            let challenge = parse_challenge(&header).unwrap();
            let answer = answer(
                &challenge,
                "carrier",
                &password,
                "INVITE",
                "sip:+1555@h",
                "c1",
                1,
                None,
            )
            .unwrap();
            let value = answer.header_value();
            let credentials = parse_credentials(&value).unwrap();
            assert_eq!(credentials.username, "carrier");
            assert_eq!(credentials.nonce_count, qop.then_some(1));
            assert!(credentials.verify(&password, "INVITE"), "{value}");
            assert!(
                !credentials.verify(&Secret::new("wrong"), "INVITE"),
                "{value}"
            );
            assert!(!credentials.verify(&password, "BYE"), "method is covered");
            let upper = value.replace(answer.response(), &answer.response().to_uppercase());
            assert!(
                parse_credentials(&upper)
                    .unwrap()
                    .verify(&password, "INVITE")
            );
        }
        for bad in [
            "Basic abc",
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"",
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth",
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth, cnonce=\"c\", nc=1",
            "Digest username=\"a\", username=\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"",
        ] {
            assert!(parse_credentials(bad).is_err(), "{bad}");
        }
    }
}
