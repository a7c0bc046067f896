//! For every key of the distillation settings: flags beat the --config file and the file
//! beats the library's defaults, as `dmgd distill --print-config` shows them.

use std::process::Command;
use toml::Value;

/// For every key: the file's line(s), flags that set another value, and that value. Extra
/// file lines keep a case valid (ddim samples plain DiT only).
fn cases() -> Vec<(&'static str, &'static str, Vec<&'static str>, &'static str)> {
    vec![
        (
            "method",
            "method = \"mgd3\"",
            vec!["--method", "dit"],
            "\"dit\"",
        ),
        // Switches go one way: the file holds the other value.
        (
            "semantic",
            "semantic = true",
            vec!["--no-semantic"],
            "false",
        ),
        (
            "distribution",
            "distribution = true",
            vec!["--no-distribution"],
            "false",
        ),
        ("ipc", "ipc = 3", vec!["--ipc", "7"], "7"),
        ("seed", "seed = 3", vec!["--seed", "9"], "9"),
        ("steps", "steps = 20", vec!["--steps", "30"], "30"),
        (
            "sampler",
            "sampler = \"ddim\"\nmethod = \"dit\"",
            vec!["--sampler", "ddpm"],
            "\"ddpm\"",
        ),
        (
            "cfg-scale",
            "cfg-scale = 2.0",
            vec!["--cfg-scale", "3.0"],
            "3.0",
        ),
        (
            "cfg-channels",
            "cfg-channels = \"all-eps\"",
            vec!["--cfg-channels", "first-three"],
            "\"first-three\"",
        ),
        (
            "clip-denoised",
            "clip-denoised = \"yes\"",
            vec!["--clip-denoised", "no"],
            "\"no\"",
        ),
        (
            "class-batch",
            "class-batch = 2",
            vec!["--class-batch", "5"],
            "5",
        ),
        ("t-upper", "t-upper = 800", vec!["--t-upper", "950"], "950"),
        ("t-lower", "t-lower = 400", vec!["--t-lower", "300"], "300"),
        ("beta-n", "beta-n = 0.2", vec!["--beta-n", "0.3"], "0.3"),
        ("beta-s", "beta-s = 0.2", vec!["--beta-s", "0.3"], "0.3"),
        (
            "noise",
            "noise = \"gaussian\"",
            vec!["--noise", "uniform"],
            "\"uniform\"",
        ),
        (
            "support-points",
            "support-points = 5",
            vec!["--support-points", "7"],
            "7",
        ),
        (
            "kmeans-iterations",
            "kmeans-iterations = 5",
            vec!["--kmeans-iterations", "7"],
            "7",
        ),
        ("rho", "rho = 2.0", vec!["--rho", "-1"], "-1.0"),
        (
            "sinkhorn-eps",
            "sinkhorn-eps = 0.2",
            vec!["--sinkhorn-eps", "0.3"],
            "0.3",
        ),
        (
            "sinkhorn-iterations",
            "sinkhorn-iterations = 7",
            vec!["--sinkhorn-iterations", "9"],
            "9",
        ),
        (
            "sinkhorn-log-domain",
            "sinkhorn-log-domain = false",
            vec!["--sinkhorn-log-domain"],
            "true",
        ),
        (
            "ot-window",
            "ot-window = [20, 40]",
            vec!["--ot-window", "10,30"],
            "[10, 30]",
        ),
        (
            "mode-lambda",
            "mode-lambda = 0.2",
            vec!["--mode-lambda", "0.3"],
            "0.3",
        ),
        (
            "mode-stop",
            "mode-stop = 20",
            vec!["--mode-stop", "10"],
            "10",
        ),
    ]
}

/// The settings `dmgd distill <flags> --print-config` resolves to.
fn resolved(file: Option<&str>, flags: &[&str]) -> toml::Table {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dmgd"));
    cmd.args(["distill", "--print-config"]).args(flags);
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn value(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
}

#[test]
fn flags_beat_the_file_and_the_file_beats_the_defaults_for_every_key() {
    let defaults = resolved(None, &[]);
    let cases = cases();
    for key in defaults.keys() {
        assert!(
            cases.iter().any(|c| c.0 == key),
            "key {key} has no precedence case"
        );
    }
    for (key, file, flags, flag_value) in cases {
        let from_file = toml::from_str::<toml::Table>(file).unwrap()[key].clone();
        let flag_value = value(flag_value);
        assert_ne!(
            flag_value, from_file,
            "{key}: the case must tell the three apart"
        );
        // A switch's file value is its default: the flag can only turn it the other way.
        if !defaults[key].is_bool() {
            assert_ne!(
                from_file, defaults[key],
                "{key}: the case must tell the three apart"
            );
        }
        assert_eq!(
            resolved(Some(file), &[])[key],
            from_file,
            "{key}: file over default"
        );
        assert_eq!(
            resolved(Some(file), &flags)[key],
            flag_value,
            "{key}: flag over file"
        );
    }
}

#[test]
fn a_printed_configuration_reads_back_as_the_same_settings() {
    let flags = [
        "--method",
        "mgd3",
        "--ipc",
        "3",
        "--rho",
        "-0.5",
        "--ot-window",
        "5",
        "9",
    ];
    let printed = resolved(None, &flags);
    let text = toml::to_string(&printed).unwrap();
    assert_eq!(resolved(Some(&text), &[]), printed);
}
