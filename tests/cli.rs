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
