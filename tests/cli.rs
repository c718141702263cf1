//! The command line a newcomer meets first.

use std::process::Command;

fn trunkd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn version_names_the_program_and_version() {
    let output = trunkd(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("trunkd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_commands_and_the_default_config() {
    let output = trunkd(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in ["run", "check-config", "--log-format", "SIGHUP"] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
    let output = trunkd(&["run", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("[default: /etc/trunkd/trunkd.toml]"),
        "{help}"
    );
}

#[test]
fn usage_errors_exit_2_and_a_missing_file_exits_1_naming_it() {
    assert_eq!(trunkd(&["frobnicate"]).status.code(), Some(2));
    let output = trunkd(&["check-config", "--config", "/nonexistent/trunkd.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("/nonexistent/trunkd.toml: cannot read config file: No such file"),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_warnings_on_stderr_and_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunkd.toml");
    // inbound_auth = "ip" without allowed_inbound_ips: only the next hop may call in.
    std::fs::write(
        &path,
        "[backend]\nuri = \"sip:127.0.0.1:5080\"\n\n[trunks.carrier]\ndomain = \"192.0.2.1\"\n",
    )
    .unwrap();
    let output = trunkd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: {}:4:9: trunk carrier: inbound_auth = \"ip\" without allowed_inbound_ips: \
             only the next hop 192.0.2.1 may send inbound calls (allow_next_hop); list the \
             carrier's other signalling addresses, if any",
            path.display()
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        format!(
            "{}: ok: 1 trunk (1 enabled) from 1 file; 1 warning",
            path.display()
        )
    );
}
