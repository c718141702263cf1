//! `trunkd::sip::scan::scan` (and `scan_with`) on arbitrary bytes, as one UDP datagram.
//!
//! Every input is scanned under all four `ScanOptions` (bare LF refused or accepted,
//! Content-Length optional or required), so the committed seeds stay exact wire copies and
//! need no selector byte. Properties:
//! - no panic, in `scan` or in any lazy accessor of `Scan`, all of which are called;
//! - the options only do what they say: accepting bare LF changes nothing for an input
//!   refused for another reason or accepted without it, and requiring Content-Length only
//!   turns an accepted message without one into `MissingContentLength`;
//! - a header storage one slot short of the header count gives `HeaderStorageFull`;
//! - `scan_lean` accepts and refuses exactly what `scan_with` does, with the same error,
//!   and every accessor of the two (headers, typed views, body, lengths) agrees;
//! - on success: `message_len() <= input length`, the body is the input's bytes that end
//!   at `message_len()` (its length is Content-Length when present, else it runs to the
//!   end), every borrowed slice lies inside the input, `headers().len() <= MAX_HEADERS`,
//!   `via_count() <= MAX_VIAS` and equals the number of `vias()`, a header value holds
//!   CR or LF only inside a fold and `unfolded()` none, `header(name)` finds the first
//!   header of that name, and the typed views agree with their raw parameters
//!   (`Via::branch`/`received` with its params, `NameAddr::tag`/`user` with its params and
//!   URI, `top_via()` with `vias()`, `contact()` with `contacts()`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkd::sip::scan::{
    CSeq, Contact, EMPTY_HEADER, Header, HeaderName, MAX_HEADERS, MAX_MAX_FORWARDS, MAX_VIAS,
    Method, NameAddr, Params, Rport, Scan, ScanError, ScanOptions, StartLine, Via, scan, scan_lean,
    scan_with, uri_scheme, uri_user,
};

const LENIENT: ScanOptions = ScanOptions {
    allow_bare_lf: true,
    require_content_length: false,
};
const LENIENT_STREAM: ScanOptions = ScanOptions {
    allow_bare_lf: true,
    require_content_length: true,
};

fuzz_target!(|data: &[u8]| {
    let mut strict_storage = [EMPTY_HEADER; MAX_HEADERS];
    let mut stream_storage = [EMPTY_HEADER; MAX_HEADERS];
    let mut lenient_storage = [EMPTY_HEADER; MAX_HEADERS];
    let mut lenient_stream_storage = [EMPTY_HEADER; MAX_HEADERS];

    let strict = scan(data, &mut strict_storage);
    let stream = scan_with(data, &mut stream_storage, ScanOptions::STREAM);
    let lenient = scan_with(data, &mut lenient_storage, LENIENT);
    let lenient_stream = scan_with(data, &mut lenient_stream_storage, LENIENT_STREAM);

    check_lean(data, &strict, ScanOptions::DATAGRAM);
    check_lean(data, &stream, ScanOptions::STREAM);
    check_lean(data, &lenient, LENIENT);
    check_lean(data, &lenient_stream, LENIENT_STREAM);

    check_require_content_length(&strict, &stream);
    check_require_content_length(&lenient, &lenient_stream);
    check_allow_bare_lf(&strict, &lenient);
    check_allow_bare_lf(&stream, &lenient_stream);

    // The lenient datagram scan accepts whatever any other accepts, with the same result
    // (checked above), so its accessors cover them all.
    if let Ok(message) = &lenient {
        check_message(data, message);
        check_short_storage(data, message.headers().len());
    }
});

/// `scan_lean` accepts and refuses what `scan_with` does (with the same error), and every
/// accessor of the two agrees.
fn check_lean(data: &[u8], full: &Result<Scan<'_, '_>, ScanError>, options: ScanOptions) {
    let lean = scan_lean(data, options);
    let (full, lean) = match (full, &lean) {
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "scan_lean refused differently");
            return;
        }
        (Ok(full), Ok(lean)) => (full, lean),
        (full, lean) => panic!("scan_with gave {full:?}, scan_lean {lean:?}"),
    };
    assert!(lean.headers().eq(full.headers().iter().copied()));
    assert_eq!(lean.header_count(), full.headers().len());
    assert_eq!(lean.start_line(), full.start_line());
    assert_eq!(lean.request_uri_user(), full.request_uri_user());
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::Contact,
        HeaderName::ContentLength,
        HeaderName::ProxyAuthorization,
    ] {
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
        // The second answer comes from the cache.
        assert_eq!(lean.top_via_entry(), full.top_via_entry());
        assert_eq!(lean.to().copied(), full.to());
    }
    assert!(lean.vias().eq(full.vias()));
    assert_eq!(lean.from(), full.from());
    assert_eq!(lean.call_id(), full.call_id());
    assert_eq!(lean.cseq(), full.cseq());
    // The plain CSeq shortcut says what the parse and a compare say.
    let matches = full.cseq().map(|cseq| Some(cseq.method) == full.method());
    assert_eq!(lean.cseq_matches_method(), matches);
    assert_eq!(lean.top_via_branch(), full.top_via().map(|via| via.branch));
    assert_eq!(lean.max_forwards(), full.max_forwards());
    assert_eq!(lean.contact(), full.contact());
    assert!(lean.contacts().eq(full.contacts()));
}

/// `require_content_length` only turns an accepted message without Content-Length into
/// `MissingContentLength`.
fn check_require_content_length(
    optional: &Result<Scan<'_, '_>, ScanError>,
    required: &Result<Scan<'_, '_>, ScanError>,
) {
    match (optional, required) {
        (Ok(a), Ok(b)) => {
            assert!(
                a.content_length().is_some(),
                "accepted without Content-Length"
            );
            assert_same(a, b);
        }
        (Ok(a), Err(error)) => {
            assert_eq!(*error, ScanError::MissingContentLength);
            assert_eq!(a.content_length(), None);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (Err(error), Ok(_)) => panic!("requiring Content-Length accepted what {error:?} refused"),
    }
}

/// `allow_bare_lf` changes nothing unless the strict scan stopped at a bare LF, and a
/// lenient scan never reports one.
fn check_allow_bare_lf(
    strict: &Result<Scan<'_, '_>, ScanError>,
    lenient: &Result<Scan<'_, '_>, ScanError>,
) {
    if let Err(error) = lenient {
        assert_ne!(*error, ScanError::BareLf, "bare LF allowed but reported");
    }
    match (strict, lenient) {
        (Err(ScanError::BareLf), _) => {}
        (Ok(a), Ok(b)) => assert_same(a, b),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("allowing bare LF changed {a:?} into {b:?}"),
    }
}

fn assert_same(a: &Scan<'_, '_>, b: &Scan<'_, '_>) {
    assert_eq!(a.start_line(), b.start_line());
    assert_eq!(a.headers(), b.headers());
    assert_eq!(a.body().as_ptr(), b.body().as_ptr());
    assert_eq!(a.body().len(), b.body().len());
    assert_eq!(a.content_length(), b.content_length());
    assert_eq!(a.via_count(), b.via_count());
    assert_eq!(a.message_len(), b.message_len());
}

/// With one slot fewer than the message has headers, the scan stops at the last one.
fn check_short_storage(data: &[u8], count: usize) {
    let Some(short) = count.checked_sub(1) else {
        return;
    };
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    let result = scan_with(data, &mut storage[..short], LENIENT);
    assert_eq!(result.err(), Some(ScanError::HeaderStorageFull));
}

/// Where `inner` starts inside `outer`, if it lies wholly inside it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start.checked_add(inner.len())? <= outer.len()).then_some(start)
}

/// A non-empty borrowed slice must point into `within` (an empty one may be a literal).
fn assert_inside(within: &[u8], inner: &[u8], what: &str) {
    if !inner.is_empty() {
        assert!(
            offset_in(within, inner).is_some(),
            "{what} is not a slice of its source: {inner:?}"
        );
    }
}

fn check_message(data: &[u8], message: &Scan<'_, '_>) {
    // Lengths and the body.
    let message_len = message.message_len();
    assert!(
        message_len <= data.len(),
        "message_len {message_len} > {}",
        data.len()
    );
    let body = message.body();
    let body_start = offset_in(data, body).expect("body is not a slice of the input");
    assert_eq!(
        body_start + body.len(),
        message_len,
        "body does not end the message"
    );
    match message.content_length() {
        Some(length) => assert_eq!(body.len(), length),
        None => assert_eq!(message_len, data.len(), "no Content-Length, body cut short"),
    }
    let head = &data[..body_start];
    assert!(head.ends_with(b"\n"), "head does not end in a line end");

    check_start_line(head, message);

    // Headers.
    let headers = message.headers();
    assert!(headers.len() <= MAX_HEADERS);
    for header in headers {
        check_header(head, header);
        let first = headers
            .iter()
            .find(|other| other.name == header.name)
            .expect("a header finds itself");
        assert_eq!(message.header(header.name), Some(first.value));
        let values = message.header_values(header.name).count();
        let expected = headers
            .iter()
            .filter(|other| other.name == header.name)
            .count();
        assert_eq!(values, expected);
    }

    // Vias.
    let via_count = message.via_count();
    assert!(via_count <= MAX_VIAS, "via_count {via_count} > {MAX_VIAS}");
    let mut vias = 0;
    let mut first_via = None;
    for via in message.vias() {
        if let Ok(via) = via {
            check_via(head, &via);
        }
        if vias == 0 {
            first_via = Some(via);
        }
        vias += 1;
    }
    assert_eq!(vias, via_count, "vias() and via_count() disagree");
    let top_via = message.top_via();
    match (&top_via, first_via) {
        (Ok(top), first) => assert_eq!(first, Some(Ok(*top)), "top_via is not the first via"),
        // No Via at all; or the first Via entry is malformed, or the first Via header
        // holds no entry (`Via: ,`) while a later one does.
        (Err(_), None) | (Err(ScanError::MalformedHeader("Via")), Some(_)) => {}
        (Err(error), Some(first)) => panic!("top_via is {error:?}, the first via {first:?}"),
    }

    // Address headers.
    for name_addr in [message.from(), message.to()].into_iter().flatten() {
        check_name_addr(head, &name_addr);
    }

    if let Ok(call_id) = message.call_id() {
        assert!(!call_id.is_empty());
        assert!(call_id.iter().all(|&b| (0x21..=0x7E).contains(&b)));
        assert_inside(head, call_id, "Call-ID");
    }
    if let Ok(CSeq { method, .. }) = message.cseq() {
        check_method(method);
    }
    if let Ok(Some(max_forwards)) = message.max_forwards() {
        assert!(max_forwards <= MAX_MAX_FORWARDS);
    }

    let mut first_contact = None;
    for (index, contact) in message.contacts().enumerate() {
        if let Ok(Contact::Address(name_addr)) = &contact {
            check_name_addr(head, name_addr);
        }
        if index == 0 {
            first_contact = Some(contact);
        }
    }
    match message.contact() {
        Ok(None) => assert!(message.header(HeaderName::Contact).is_none()),
        Ok(Some(contact)) => assert_eq!(first_contact, Some(Ok(contact))),
        Err(_) => assert!(message.header(HeaderName::Contact).is_some()),
    }
}

fn check_start_line(head: &[u8], message: &Scan<'_, '_>) {
    match message.start_line() {
        StartLine::Request { method, uri } => {
            assert!(message.is_request());
            assert_eq!(message.method(), Some(method));
            assert_eq!(message.request_uri(), Some(uri));
            assert_eq!(message.status_code(), None);
            check_method(method);
            assert!(!uri.is_empty());
            assert!(
                uri.iter()
                    .all(|&b| b > b' ' && b < 0x7F && b != b'<' && b != b'>')
            );
            assert!(uri_scheme(uri).is_some(), "Request-URI without a scheme");
            assert_inside(head, uri, "Request-URI");
            let user = message.request_uri_user();
            assert_eq!(user, uri_user(uri));
            if let Some(user) = user {
                assert!(!user.is_empty());
                assert_inside(uri, user, "Request-URI user");
            }
        }
        StartLine::Response { code, reason } => {
            assert!(!message.is_request());
            assert_eq!(message.status_code(), Some(code));
            assert_eq!(message.method(), None);
            assert_eq!(message.request_uri(), None);
            assert_eq!(message.request_uri_user(), None);
            assert!((100..=699).contains(&code), "status code {code}");
            assert!(!reason.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
            assert_inside(head, reason, "reason phrase");
        }
    }
}

fn check_method(method: Method<'_>) {
    let bytes = method.as_bytes();
    assert!(!bytes.is_empty());
    assert_eq!(
        Method::parse(bytes),
        Some(method),
        "method does not round-trip"
    );
}

fn check_header(head: &[u8], header: &Header<'_>) {
    if let HeaderName::Other(name) = header.name {
        assert!(!name.is_empty(), "empty header name");
        assert_inside(head, name, "header name");
        assert!(
            matches!(HeaderName::parse(name), HeaderName::Other(_)),
            "known header stored as extension: {name:?}"
        );
    } else {
        let canonical = header.name.canonical();
        assert_eq!(HeaderName::parse(canonical.as_bytes()), header.name);
    }

    let value = header.value;
    assert_inside(head, value, "header value");
    let is_lws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    assert!(
        !value.first().is_some_and(is_lws),
        "value not trimmed: {value:?}"
    );
    assert!(
        !value.last().is_some_and(is_lws),
        "value not trimmed: {value:?}"
    );
    for (index, &byte) in value.iter().enumerate() {
        match byte {
            // A fold: CR only before LF, LF only before SP or HTAB.
            b'\r' => assert_eq!(value.get(index + 1), Some(&b'\n'), "stray CR: {value:?}"),
            b'\n' => assert!(
                matches!(value.get(index + 1), Some(b' ' | b'\t')),
                "LF outside a fold: {value:?}"
            ),
            b'\t' => {}
            _ => assert!(byte >= b' ' && byte != 0x7F, "control byte: {value:?}"),
        }
    }
    let has_fold = value.contains(&b'\n');
    let mut unfolded_len = 0;
    for byte in header.unfolded() {
        assert!(
            byte != b'\r' && byte != b'\n',
            "unfolded() kept a line end: {value:?}"
        );
        unfolded_len += 1;
    }
    assert!(unfolded_len <= value.len());
    if !has_fold {
        assert!(header.unfolded().eq(value.iter().copied()));
    }
}

fn check_via(head: &[u8], via: &Via<'_>) {
    assert!(!via.sent_by_host.is_empty());
    assert_inside(head, via.sent_by_host, "Via host");
    assert_ne!(via.sent_by_port, Some(0));
    assert_ne!(via.rport, Rport::Value(0));
    assert_inside(head, via.params, "Via params");
    let mut params = 0;
    for param in Params::new(via.params) {
        let param = param.expect("an accepted Via has malformed params");
        assert!(!param.name.is_empty());
        params += 1;
    }
    assert_eq!(via.params.is_empty(), params == 0);
    let branch = Params::new(via.params).get(b"branch");
    assert_eq!(via.branch, branch.and_then(|param| param.value));
    let received = Params::new(via.params).get(b"received");
    assert_eq!(via.received, received.and_then(|param| param.value));
    if let Some(branch) = via.branch {
        assert!(!branch.is_empty());
        assert_inside(head, branch, "Via branch");
    }
    let rport = Params::new(via.params).get(b"rport");
    assert_eq!(via.rport == Rport::Absent, rport.is_none());
    // What a response writer fills in: the first rport without a value, the very bytes.
    let request = Params::new(via.params)
        .map_while(Result::ok)
        .find(|param| param.name.eq_ignore_ascii_case(b"rport") && param.value.is_none())
        .map(|param| param.name);
    assert_eq!(
        via.rport_request().map(<[u8]>::as_ptr),
        request.map(<[u8]>::as_ptr)
    );
    assert_eq!(via.rport_request(), request);
}

fn check_name_addr(head: &[u8], name_addr: &NameAddr<'_>) {
    let uri = name_addr.uri;
    assert!(!uri.is_empty());
    assert!(uri_scheme(uri).is_some(), "address URI without a scheme");
    assert_inside(head, uri, "address URI");
    assert_eq!(name_addr.user(), uri_user(uri));
    if let Some(display_name) = name_addr.display_name {
        assert_inside(head, display_name, "display name");
    }
    assert_inside(head, name_addr.params, "address params");
    for param in name_addr.params() {
        let param = param.expect("an accepted address has malformed params");
        assert!(!param.name.is_empty());
        assert_inside(name_addr.params, param.name, "param name");
        if let Some(value) = param.value {
            assert_inside(name_addr.params, value, "param value");
        }
    }
    let tag = name_addr.param(b"tag");
    assert_eq!(name_addr.tag, tag.and_then(|param| param.value));
    if let Some(tag) = tag {
        assert!(tag.value.is_some(), "accepted a tag without a value");
    }
}
