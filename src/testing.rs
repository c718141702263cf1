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
