//! The shipped config files: every example loads, every invalid case fails with exactly
//! the errors written in its `# expect:` lines, through the library and the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use trunkd::config::{self, LoadOptions};

/// Marker used as a password in the invalid cases; it must never be printed.
const SECRET_MARKER: &str = "s3cret-never-print";

fn invalid_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir("config/invalid")
        .expect("config/invalid exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the invalid cases, found {cases:?}"
    );
    cases
}

fn expected_errors(case: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(case).unwrap();
    let expected: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(str::to_owned)
        .collect();
    assert!(
        !expected.is_empty(),
        "{} has no # expect: lines",
        case.display()
    );
    expected
}

#[test]
fn shipped_example_loads_with_its_includes() {
    let config = config::load(Path::new("config/trunkd.toml"), &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("example config is invalid:\n{errors}"));
    let ids: Vec<&str> = config.trunks.keys().map(String::as_str).collect();
    assert_eq!(ids, ["carrier-x-us", "inbound-de", "lab-registrar"]);
    assert_eq!(
        config.files.len(),
        3,
        "main file and two includes: {:?}",
        config.files
    );
    let carrier = &config.trunks["carrier-x-us"];
    assert!(!carrier.enabled);
    assert_eq!(carrier.port, 5061, "tls default port");
    assert_eq!(carrier.numbers[0].to_string(), "+15551234567", "normalised");
    assert_eq!(
        carrier.password.as_ref().map(|p| p.expose()),
        Some("example-not-a-real-password"),
        "password_file read, trailing newline dropped"
    );
    // Nothing secret in the Debug form of the whole config.
    let debug = format!("{config:?}");
    assert!(!debug.contains("example-not-a-real-password"));
    assert!(!debug.contains("lab-password"));
    assert!(debug.contains("Secret(<redacted>)"));
}

#[test]
fn check_config_accepts_the_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["check-config", "--config", "config/trunkd.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout.trim(),
        "config/trunkd.toml: ok: 3 trunks (2 enabled) from 3 files"
    );
}

/// The Debian package's /etc/trunkd/trunkd.toml (`debian/trunkd.toml`): valid as shipped,
/// with no trunks and listening on loopback only until it is edited.
#[test]
fn packaged_config_is_valid_and_does_nothing_until_edited() {
    let path = Path::new("debian/trunkd.toml");
    let config = config::load(path, &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("packaged config is invalid:\n{errors}"));
    assert!(config.trunks.is_empty(), "{:?}", config.trunks.keys());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(
        config
            .daemon
            .listen
            .iter()
            .all(|l| l.address.ip().is_loopback()),
        "{:?}",
        config.daemon.listen
    );
    // The unit's RuntimeDirectory=trunkd.
    assert_eq!(
        config.daemon.status_file.as_deref(),
        Some(Path::new("/run/trunkd/status.json"))
    );

    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["check-config", "--config", "debian/trunkd.toml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "debian/trunkd.toml: ok: 0 trunks (0 enabled) from 1 file"
    );
    assert!(output.stderr.is_empty(), "{output:?}");
}

/// Its example settings (`#key = ...`, `#[table]`) load once uncommented, the relative
/// `password_file` as a systemd credential.
#[test]
fn packaged_config_examples_load_when_uncommented() {
    let text = std::fs::read_to_string("debian/trunkd.toml").unwrap();
    let uncommented: Vec<&str> = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c == '[' || c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("trunkd.toml");
    std::fs::write(&main, uncommented.join("\n")).unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("carrier-x.password"), "x\n").unwrap();
    std::fs::write(credentials.join("redis.password"), "r\n").unwrap();
    let options = LoadOptions {
        credentials_dir: Some(credentials),
    };
    let config = config::load(&main, &options)
        .unwrap_or_else(|errors| panic!("uncommented packaged config is invalid:\n{errors}"));
    let ids: Vec<&str> = config.trunks.keys().map(String::as_str).collect();
    assert_eq!(ids, ["carrier-x"]);
    assert!(
        !config.trunks["carrier-x"].enabled,
        "the example stays disabled"
    );
    assert!(config.backend.is_some());
    let cluster = config.cluster.expect("the [cluster] example");
    assert_eq!(
        cluster.password.map(|p| p.expose().to_owned()).as_deref(),
        Some("r")
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn every_invalid_case_reports_exactly_its_expected_errors() {
    for case in invalid_cases() {
        let expected = expected_errors(&case);
        let errors = config::load(&case, &LoadOptions::default())
            .map(|_| ())
            .expect_err(&format!("{} should be invalid", case.display()));
        let actual: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(actual, expected, "errors of {}", case.display());
    }
}

#[test]
fn check_config_binary_prints_every_error_and_fails() {
    for case in invalid_cases() {
        let expected = expected_errors(&case);
        let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
            .arg("check-config")
            .arg("--config")
            .arg(&case)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", case.display());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let (summary, errors) = lines.split_last().expect("some output");
        assert_eq!(errors, expected.as_slice(), "stderr of {}", case.display());
        let plural = if expected.len() == 1 { "" } else { "s" };
        assert_eq!(
            *summary,
            format!(
                "{}: invalid: {} error{plural}",
                case.display(),
                expected.len()
            )
        );
        assert!(
            !stderr.contains(SECRET_MARKER),
            "secret printed for {}",
            case.display()
        );
        assert!(output.stdout.is_empty());
    }
}

/// Inserts an unknown key at the top of every table of every shipped file (and at the top
/// level) and checks each is rejected at exactly that line.
#[test]
fn unknown_key_is_rejected_in_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("carrier-x.password.example"), "x\n").unwrap();
    let mut checked_tables = 0;
    let mut shipped_files = vec!["config/trunkd.toml".to_owned()];
    for entry in std::fs::read_dir("config/trunks.d").unwrap() {
        shipped_files.push(entry.unwrap().path().to_string_lossy().into_owned());
    }
    for shipped in &shipped_files {
        let text = std::fs::read_to_string(shipped).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Line indices after which to insert: 0 = the top level, then each table header.
        let mut insert_after: Vec<usize> = vec![0];
        insert_after.extend(
            lines
                .iter()
                .enumerate()
                .filter(|(_, line)| line.starts_with('['))
                .map(|(index, _)| index + 1),
        );
        for after in insert_after {
            let mut edited: Vec<&str> = lines.clone();
            edited.insert(after, "injected_unknown_key = 1");
            let table = if after == 0 {
                "top level".to_owned()
            } else {
                lines[after - 1].trim_matches(['[', ']']).to_owned()
            };
            // Write the edited file where it lives relative to its includes.
            let target = dir
                .path()
                .join(Path::new(shipped).strip_prefix("config").unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            copy_shipped_tree(dir.path());
            std::fs::write(&target, edited.join("\n")).unwrap();
            let errors = config::load(&dir.path().join("trunkd.toml"), &LoadOptions::default())
                .map(|_| ())
                .expect_err("unknown key must be rejected");
            assert_eq!(errors.0.len(), 1, "{shipped} [{table}]: {errors}");
            let error = &errors.0[0];
            assert_eq!(
                error.position,
                Some((after as u32 + 1, 1)),
                "{shipped} [{table}]"
            );
            let in_included_top_level = after == 0 && shipped.contains("trunks.d");
            if in_included_top_level {
                assert!(
                    error.message.contains("not allowed in an included file"),
                    "{error}"
                );
            } else {
                assert!(
                    error
                        .message
                        .starts_with("unknown key \"injected_unknown_key\""),
                    "{error}"
                );
            }
            checked_tables += 1;
        }
    }
    assert!(checked_tables >= 8, "checked {checked_tables} tables");
}

fn copy_shipped_tree(into: &Path) {
    std::fs::write(
        into.join("trunkd.toml"),
        std::fs::read("config/trunkd.toml").unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(into.join("trunks.d")).unwrap();
    for entry in std::fs::read_dir("config/trunks.d").unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, into.join("trunks.d").join(path.file_name().unwrap())).unwrap();
    }
}
