//! What `dmgd <command> --help` promises: every computing command takes --device, and the
//! settings' flags show the library's defaults.

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
