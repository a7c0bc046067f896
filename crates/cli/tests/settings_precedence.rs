//! For every key of the distillation settings: flags beat the --config file and the file
//! beats the library's defaults, as `dmgd distill --print-config` shows them.

use std::process::Command;
use toml::Value;

/// For every key: the file's line(s) (`\n` between two), flags that set another value, and
/// that value. An extra file line keeps a case valid (ddim samples plain DiT only).
const CASES: &str = r#"
method | method = "mgd3" | --method dit | "dit"
semantic | semantic = true | --no-semantic | false
distribution | distribution = true | --no-distribution | false
ipc | ipc = 3 | --ipc 7 | 7
seed | seed = 3 | --seed 9 | 9
steps | steps = 20 | --steps 30 | 30
sampler | sampler = "ddim"\nmethod = "dit" | --sampler ddpm | "ddpm"
cfg-scale | cfg-scale = 2.0 | --cfg-scale 3.0 | 3.0
cfg-channels | cfg-channels = "all-eps" | --cfg-channels first-three | "first-three"
clip-denoised | clip-denoised = "yes" | --clip-denoised no | "no"
class-batch | class-batch = 2 | --class-batch 5 | 5
t-upper | t-upper = 800 | --t-upper 950 | 950
t-lower | t-lower = 400 | --t-lower 300 | 300
beta-n | beta-n = 0.2 | --beta-n 0.3 | 0.3
beta-s | beta-s = 0.2 | --beta-s 0.3 | 0.3
noise | noise = "gaussian" | --noise uniform | "uniform"
support-points | support-points = 5 | --support-points 7 | 7
kmeans-iterations | kmeans-iterations = 5 | --kmeans-iterations 7 | 7
rho | rho = 2.0 | --rho -1 | -1.0
sinkhorn-eps | sinkhorn-eps = 0.2 | --sinkhorn-eps 0.3 | 0.3
sinkhorn-iterations | sinkhorn-iterations = 7 | --sinkhorn-iterations 9 | 9
sinkhorn-log-domain | sinkhorn-log-domain = false | --sinkhorn-log-domain | true
ot-window | ot-window = [20, 40] | --ot-window 10,30 | [10, 30]
mode-lambda | mode-lambda = 0.2 | --mode-lambda 0.3 | 0.3
mode-stop | mode-stop = 20 | --mode-stop 10 | 10
"#;

fn cases() -> Vec<(String, String, Vec<String>, String)> {
    CASES
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(" | ").collect();
            let flags = f[2].split_whitespace().map(String::from).collect();
            (f[0].into(), f[1].replace("\\n", "\n"), flags, f[3].into())
        })
        .collect()
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
            cases.iter().any(|c| &c.0 == key),
            "key {key} has no precedence case"
        );
    }
    for (key, file, flags, flag_value) in cases {
        let (key, file) = (key.as_str(), file.as_str());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let from_file = toml::from_str::<toml::Table>(file).unwrap()[key].clone();
        let flag_value = value(&flag_value);
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
