//! `trunkd::config::load_str` on arbitrary main-file text.
//!
//! Properties:
//! - it never panics;
//! - on `Err`, every error names a file (all paths here are under `DIR`);
//! - on `Ok`, the `Debug` of the `Config` shows no password: not the text of any
//!   `password = "..."` in the input, and nothing that depends on a `Secret`'s content.
//!
//! The main file lives in a directory that does not exist, so relative `include` globs and
//! `password_file` paths find nothing. Inputs with an absolute path anywhere in them are
//! skipped: `include = ["/*/*"]` would read /proc and /sys (`/proc/kcore` is a "file" of
//! 128 TiB), which says nothing about trunkd and everything about the machine.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use toml::de::{DeTable, DeValue};
use trunkd::config::{Config, LoadOptions, Secret, load_str};

const DIR: &str = "/nonexistent-trunkd-fuzz/";
const MAIN: &str = "/nonexistent-trunkd-fuzz/trunkd.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if names_absolute_path(&text) {
        return;
    }
    match load_str(Path::new(MAIN), &text, &LoadOptions::default()) {
        Err(errors) => {
            assert!(
                !errors.0.is_empty(),
                "Err(ConfigErrors) with no error in it"
            );
            for error in &errors.0 {
                let shown = error.to_string();
                assert!(shown.contains(DIR), "error names no file: {shown:?}");
            }
        }
        Ok(config) => check_secrets_hidden(&text, &config),
    }
});

fn check_secrets_hidden(text: &str, config: &Config) {
    let shown = format!("{config:?}");
    // The same config with every password replaced: what Debug may legitimately show.
    let mut scrubbed = config.clone();
    for trunk in scrubbed.trunks.values_mut() {
        if trunk.password.is_some() {
            Arc::make_mut(trunk).password = Some(Secret::new("scrubbed"));
        }
    }
    let scrubbed = format!("{scrubbed:?}");

    // Inline passwords, read from the text: found in the Debug output and not explained by
    // another key that holds the same text (a name, a username, ...).
    const KEY: &str = "password = \"";
    for (start, _) in text.match_indices(KEY) {
        let rest = &text[start + KEY.len()..];
        let Some(end) = rest.find(['"', '\\', '\n']) else {
            continue;
        };
        let value = &rest[..end];
        if value.len() >= 6 && rest[end..].starts_with('"') && !scrubbed.contains(value) {
            assert!(
                !shown.contains(value),
                "Debug of Config shows password {value:?}: {shown}"
            );
        }
    }
    // Every password, also from escapes and password_file: Debug must not depend on it.
    assert_eq!(
        shown, scrubbed,
        "Debug of Config depends on a password's content"
    );
}

/// Whether any string value in the document starts with `/` (after TOML unescaping, so
/// `"\u002fproc"` counts). A document that is not TOML is loaded as is: trunkd stops at
/// the syntax error before reading any other file.
fn names_absolute_path(text: &str) -> bool {
    let (document, errors) = DeTable::parse_recoverable(text);
    errors.is_empty() && table_names_absolute_path(document.get_ref())
}

fn table_names_absolute_path(table: &DeTable<'_>) -> bool {
    table
        .values()
        .any(|value| value_names_absolute_path(value.get_ref()))
}

fn value_names_absolute_path(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::String(text) => text.starts_with('/'),
        DeValue::Array(items) => items
            .iter()
            .any(|item| value_names_absolute_path(item.get_ref())),
        DeValue::Table(table) => table_names_absolute_path(table),
        _ => false,
    }
}
