//! Helpers shared by the unit tests of several modules.

/// Calls `check` with every string of up to `max_len` bytes drawn from `alphabet`: an
/// exhaustive search over the short inputs where hand-written readers go wrong.
pub(crate) fn every_string(alphabet: &[u8], max_len: u32, mut check: impl FnMut(&[u8])) {
    let mut string = Vec::new();
    for len in 0..=max_len {
        for mut index in 0..alphabet.len().pow(len) {
            string.clear();
            for _ in 0..len {
                string.push(alphabet[index % alphabet.len()]);
                index /= alphabet.len();
            }
            check(&string);
        }
    }
}

/// A registrar's 200 to `register`: its Via, From, To (tagged), Call-ID and CSeq back,
/// its Contact granted `expires` seconds.
pub(crate) fn registrar_ok(register: &str, expires: u32) -> String {
    let header = |name: &str| {
        register
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {register}"))
            .trim()
    };
    let contact = header("Contact:");
    let contact = contact.find('>').map_or(contact, |end| &contact[..=end]);
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=r\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: {contact};expires={expires}\r\nContent-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:"),
    )
}
