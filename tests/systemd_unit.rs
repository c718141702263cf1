//! Checks on the shipped systemd unit, `systemd/trunkd.service`.
//!
//! `unit_passes_systemd_analyze_verify` needs `systemd-analyze` (Debian/Ubuntu
//! and Fedora: package `systemd`). It does not need systemd running as PID 1:
//! `systemd-analyze verify` loads the unit offline, so it works in containers
//! and CI. If the tool is missing the test fails rather than skipping, so a
//! broken unit can't slip through on a machine that can't check it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Path the unit file uses for the installed binary.
const INSTALLED_BIN: &str = "/usr/bin/trunkd";
/// Name of the unit; also the name of the copy handed to systemd-analyze.
const UNIT_NAME: &str = "trunkd.service";

fn unit_source_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(UNIT_NAME)
}

fn read_unit() -> String {
    let path = unit_source_path();
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Temporary directory that is removed when dropped, even if the test panics.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "trunkd-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Render `path` as the executable of an Exec*= line. Plain paths are used
/// as-is; anything else is double-quoted with systemd's escapes (`\`, `"`) and
/// `%` (specifier) doubled. `$` is left alone: systemd does not expand
/// variables in the executable path, so `$$` would be taken literally.
fn exec_path_for_unit(path: &str) -> String {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c));
    if plain {
        return path.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in path.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let unit = read_unit();
    assert!(
        unit.contains(INSTALLED_BIN),
        "{UNIT_NAME} no longer mentions {INSTALLED_BIN}; update this test"
    );

    // verify checks that every Exec*= binary exists and is executable, so
    // point the unit at the freshly built binary instead of the install path.
    let bin = env!("CARGO_BIN_EXE_trunkd");
    let dir = TempDir::new("systemd-unit-test");
    let copy = dir.0.join(UNIT_NAME);
    fs::write(&copy, unit.replace(INSTALLED_BIN, &exec_path_for_unit(bin)))
        .unwrap_or_else(|e| panic!("writing {}: {e}", copy.display()));

    let output = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`systemd-analyze` was not found in PATH; it is needed to verify \
             systemd/{UNIT_NAME}. Install the `systemd` package \
             (e.g. `apt-get install systemd` or `dnf install systemd`)."
        ),
        Err(e) => panic!("running systemd-analyze: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!(
        "systemd-analyze verify {}\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        copy.display(),
        output.status
    );

    assert!(output.status.success(), "verify failed:\n{report}");

    // Problems with our unit are reported as `<path>:<line>: ...` (syntax,
    // unknown keys: these do NOT change the exit status) or as
    // `trunkd.service: ...` (e.g. non-executable commands). Anything else on
    // stderr concerns other units installed on the host and is not ours to
    // fix, so only lines naming our unit count.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(UNIT_NAME))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze reported problems with {UNIT_NAME}:\n{}\n\nfull output:\n{report}",
        ours.join("\n")
    );
}

/// `(section, key, value)` for every active directive, in file order.
fn directives(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unparsable line in {UNIT_NAME}: {line:?}"));
        out.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    out
}

#[test]
fn unit_contains_required_directives() {
    let unit = read_unit();
    let all = directives(&unit);
    let values = |section: &str, key: &str| -> Vec<&str> {
        all.iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    let has = |section: &str, key: &str, value: &str| values(section, key).contains(&value);

    let exact = [
        ("Service", "Type", "notify"),
        ("Service", "NotifyAccess", "main"),
        (
            "Service",
            "ExecStartPre",
            "/usr/bin/trunkd check-config --config /etc/trunkd/trunkd.toml",
        ),
        (
            "Service",
            "ExecStart",
            "/usr/bin/trunkd run --config /etc/trunkd/trunkd.toml",
        ),
        ("Service", "ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Service", "WatchdogSec", "30s"),
        ("Service", "Restart", "on-failure"),
        ("Service", "User", "trunkd"),
        ("Service", "Group", "trunkd"),
        ("Service", "UMask", "0077"),
        ("Service", "RuntimeDirectory", "trunkd"),
        ("Service", "ConfigurationDirectory", "trunkd"),
        // Empty: no capabilities; SIP's default ports are above 1024.
        ("Service", "CapabilityBoundingSet", ""),
        ("Service", "NoNewPrivileges", "yes"),
        ("Service", "ProtectSystem", "strict"),
        ("Service", "ProtectHome", "yes"),
        ("Service", "PrivateTmp", "yes"),
        ("Service", "PrivateDevices", "yes"),
        ("Service", "ProtectKernelTunables", "yes"),
        ("Service", "ProtectKernelModules", "yes"),
        ("Service", "ProtectKernelLogs", "yes"),
        ("Service", "ProtectControlGroups", "yes"),
        ("Service", "ProtectClock", "yes"),
        ("Service", "ProtectHostname", "yes"),
        (
            "Service",
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_UNIX",
        ),
        ("Service", "RestrictNamespaces", "yes"),
        ("Service", "RestrictRealtime", "yes"),
        ("Service", "RestrictSUIDSGID", "yes"),
        ("Service", "LockPersonality", "yes"),
        ("Service", "MemoryDenyWriteExecute", "yes"),
        ("Service", "SystemCallArchitectures", "native"),
        ("Service", "SystemCallFilter", "@system-service"),
        ("Service", "SystemCallFilter", "~@privileged @resources"),
    ];
    let missing: Vec<String> = exact
        .iter()
        .filter(|(s, k, v)| !has(s, k, v))
        .map(|(s, k, v)| format!("[{s}] {k}={v}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{UNIT_NAME} lacks required directives:\n  {}",
        missing.join("\n  ")
    );

    // Present, value is a judgement call.
    for (section, key) in [
        ("Service", "RestartSec"),
        ("Service", "TimeoutStopSec"),
        ("Service", "LimitNOFILE"),
        ("Unit", "StartLimitIntervalSec"),
        ("Unit", "StartLimitBurst"),
    ] {
        assert!(
            !values(section, key).is_empty(),
            "{UNIT_NAME} lacks [{section}] {key}="
        );
    }

    // The credentials example is documentation (a commented-out line), since
    // an active LoadCredential= on a missing file would fail the start.
    assert!(
        unit.lines().any(|l| l.trim_start().starts_with('#')
            && l.contains(
                "LoadCredential=carrier-x.password:/etc/trunkd/credentials/carrier-x.password"
            )),
        "{UNIT_NAME} should show a commented LoadCredential= example for carrier-x.password"
    );
    assert!(
        unit.contains("CREDENTIALS_DIRECTORY"),
        "{UNIT_NAME} should explain that relative password_file paths resolve \
         against $CREDENTIALS_DIRECTORY"
    );
}
