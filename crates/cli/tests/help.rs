//! What the binary prints: `dmgd <command> --help` (every computing command takes --device,
//! the settings' flags show the library's defaults), and errors (a cause already in the line
//! above is not printed again).

use std::process::Command;

fn help(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "dmgd {command} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_computing_command_takes_a_device() {
    for command in [
        "pretrain",
        "sample",
        "distill",
        "select",
        "eval",
        "quality",
        "device-check",
    ] {
        let text = help(command);
        assert!(
            text.contains("--device"),
            "{command} has no --device:\n{text}"
        );
    }
}

#[test]
fn the_settings_flags_show_the_library_defaults() {
    let cases = [
        ("distill", "[default: 0.06]"),
        ("distill", "[default: 30,45]"),
        ("distill", "[default: uniform]"),
        ("sample", "[default: 50]"),
        ("pretrain", "[default: DiT-Ti/4]"),
        ("eval", "[default: convnet3]"),
    ];
    for (command, shown) in cases {
        let text = help(command);
        assert!(
            text.contains(shown),
            "{shown} missing from {command}:\n{text}"
        );
    }
}

#[test]
fn an_error_prints_each_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args(["sample", "--ipc", "1", "--dit"])
        .arg(&missing)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let path = missing.display().to_string();
    // The DiffusionError line holds the io error's text: that cause is not a third line.
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0], format!("error: loading the DiT {path}"));
    assert!(
        lines[1].starts_with(&format!("  caused by: {path}: ")),
        "{stderr}"
    );
}
