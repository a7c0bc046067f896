//! The resolved configuration of a distillation run: every knob of docs/METHOD.md §5–7 with the
//! reference default. Field names are the TOML keys and, kebab-cased, the CLI flags.

pub use dmgd_diffusion::dit::CfgChannels;
use serde::{Deserialize, Serialize};

/// Which synthetic-set method runs (docs/METHOD.md §1, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Dual matching guided diffusion; `semantic` / `distribution` switch its two terms.
    Dmgd,
    /// Plain classifier-free-guided DiT sampling.
    Dit,
    /// Mode guidance toward k-means modes (K = IPC).
    Mgd3,
    /// IPC random real images per class (the standard baseline; no sampling).
    Random,
}

/// Law of the noise n in the soft-label transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseLaw {
    /// Uniform on [0, 1): the authors' release.
    Uniform,
    /// Standard normal: the paper's text.
    Gaussian,
}

/// The reverse step of the sampling loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Ancestral sampling with the learned variance, over `space_timesteps(1000, "S")` (the
    /// reference).
    Ddpm,
    /// Deterministic DDIM (eta 0) over the `ddimS` respacing; plain sampling only.
    Ddim,
}

/// Whether x0_hat is clamped to [-1, 1] at every step (IDDPM's `clip_denoised`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipDenoised {
    /// In pixel space (where data lie in [-1, 1]) yes, in a VAE's latent space no (the
    /// reference DMGD sampler does not clip latents).
    Auto,
    Yes,
    No,
}

impl ClipDenoised {
    pub fn resolve(self, pixel_space: bool) -> bool {
        match self {
            ClipDenoised::Auto => pixel_space,
            ClipDenoised::Yes => true,
            ClipDenoised::No => false,
        }
    }
}

/// Every setting of a distillation run; what each key means is in `SETTINGS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DistillConfig {
    pub method: Method,
    pub semantic: bool,
    pub distribution: bool,
    pub ipc: usize,
    pub seed: u64,
    pub steps: usize,
    pub sampler: SamplerKind,
    pub cfg_scale: f64,
    pub cfg_channels: CfgChannels,
    pub clip_denoised: ClipDenoised,
    pub class_batch: usize,
    // Semantic Matching (docs/METHOD.md §5).
    pub t_upper: usize,
    pub t_lower: usize,
    pub beta_n: f64,
    pub beta_s: f64,
    pub noise: NoiseLaw,
    // Distribution Matching (docs/METHOD.md §6).
    pub support_points: usize,
    pub kmeans_iterations: usize,
    pub rho: f64,
    pub sinkhorn_eps: f64,
    pub sinkhorn_iterations: usize,
    pub sinkhorn_log_domain: bool,
    pub ot_window: [usize; 2],
    // Mode guidance (docs/METHOD.md §7).
    pub mode_lambda: f64,
    pub mode_stop: usize,
}

/// What each key means, in the order `dmgd distill --help` lists the flags (each flag is its
/// key; a switch that is on by default is turned off by `--no-<key>`). The help of a flag is
/// this line and the default of `DistillConfig::default()`: both written once, here.
pub const SETTINGS: [(&str, &str); 25] = [
    ("method", "dmgd | dit (plain CFG sampling) | mgd3 (mode guidance) | random (real images)."),
    ("semantic", "DMGD's Semantic Matching (dynamic soft labels); off: the ablation \"distribution matching only\"."),
    ("distribution", "DMGD's Distribution Matching (OT guidance); off: the ablation \"semantic matching only\"."),
    ("ipc", "Images per class."),
    ("seed", "Seed of every random draw: noise, y*, k-means, random picks (per class and image)."),
    ("steps", "Respaced sampling steps."),
    ("sampler", "ddpm (the reference) or ddim (eta 0; plain sampling only)."),
    ("cfg-scale", "Classifier-free guidance scale."),
    ("cfg-channels", "first-three (the reference sampler) or all-eps."),
    ("clip-denoised", "Clamp x0_hat to [-1, 1] each step: auto (pixel space yes, VAE latents no), yes, no."),
    ("class-batch", "Classes sampled together in one DiT batch (image i of each class of a group)."),
    ("t-upper", "Semantic Matching: exploration above this timestep."),
    ("t-lower", "Semantic Matching: refinement below this timestep."),
    ("beta-n", "Semantic Matching: noise weight."),
    ("beta-s", "Semantic Matching: other-class weight."),
    ("noise", "Semantic Matching's noise law: uniform (the release) or gaussian (the paper's text)."),
    ("support-points", "Distribution Matching: k-means support points K."),
    ("kmeans-iterations", "Distribution Matching: k-means iterations at most."),
    ("rho", "Distribution Matching: OT guidance scale rho."),
    ("sinkhorn-eps", "Distribution Matching: Sinkhorn entropic regularisation."),
    ("sinkhorn-iterations", "Distribution Matching: Sinkhorn iterations."),
    ("sinkhorn-log-domain", "Distribution Matching: Sinkhorn in the log domain (stable for small eps)."),
    ("ot-window", "Distribution Matching: first and last respaced index with OT guidance, of 50 steps (scaled for others)."),
    ("mode-lambda", "mgd3: pull strength lambda."),
    ("mode-stop", "mgd3: guidance while the respaced index is above this, of 50 steps (scaled)."),
];

/// The keys of the sampling loop itself: all that plain sampling (`dmgd sample`) reads.
pub const SAMPLING_KEYS: [&str; 8] = [
    "ipc",
    "seed",
    "steps",
    "sampler",
    "cfg-scale",
    "cfg-channels",
    "clip-denoised",
    "class-batch",
];

impl dmgd_run::Settings for DistillConfig {
    fn described() -> Vec<(&'static str, &'static str)> {
        SETTINGS.to_vec()
    }

    fn validate(&self) -> Result<(), String> {
        DistillConfig::validate(self)
    }
}

/// What `dmgd sample` reads: the sampling loop's keys (`SAMPLING_KEYS`) of a plain-sampling
/// (`method = "dit"`) configuration; `sample` and `distill --method dit` share the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SamplingConfig(pub DistillConfig);

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig(DistillConfig {
            method: Method::Dit,
            ..DistillConfig::default()
        })
    }
}

impl dmgd_run::Settings for SamplingConfig {
    fn described() -> Vec<(&'static str, &'static str)> {
        let sampling = |(key, _): &(&str, &str)| SAMPLING_KEYS.contains(key);
        SETTINGS.into_iter().filter(sampling).collect()
    }

    fn validate(&self) -> Result<(), String> {
        self.0.validate()
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            method: Method::Dmgd,
            semantic: true,
            distribution: true,
            ipc: 10,
            seed: 0,
            steps: 50,
            sampler: SamplerKind::Ddpm,
            cfg_scale: 4.0,
            cfg_channels: CfgChannels::FirstThree,
            clip_denoised: ClipDenoised::Auto,
            class_batch: 10,
            t_upper: 900,
            t_lower: 500,
            beta_n: 0.06,
            beta_s: 0.01,
            noise: NoiseLaw::Uniform,
            support_points: 10,
            kmeans_iterations: 300,
            rho: 0.5,
            sinkhorn_eps: 0.1,
            sinkhorn_iterations: 5,
            sinkhorn_log_domain: false,
            ot_window: [30, 45],
            mode_lambda: 0.1,
            mode_stop: 25,
        }
    }
}

/// The reference window and stop indices are given for 50 steps; other step counts map them
/// proportionally (rounded to the nearest index).
pub fn scale_step_index(index_of_50: usize, steps: usize) -> usize {
    ((index_of_50 as f64) * (steps as f64 - 1.0) / 49.0).round() as usize
}

impl DistillConfig {
    /// The classifier-free guidance of the sampling loop.
    pub fn cfg(&self) -> dmgd_diffusion::dit::Cfg {
        dmgd_diffusion::dit::Cfg {
            scale: self.cfg_scale,
            channels: self.cfg_channels,
        }
    }

    /// Semantic Matching is active (DMGD with its semantic term).
    pub fn uses_soft_labels(&self) -> bool {
        self.method == Method::Dmgd && self.semantic
    }

    /// OT guidance is active (DMGD with its distribution term).
    pub fn uses_ot(&self) -> bool {
        self.method == Method::Dmgd && self.distribution
    }

    /// The respacing of the diffusion (`GaussianDiffusion::new`'s argument).
    pub fn respacing(&self) -> String {
        match self.sampler {
            SamplerKind::Ddpm => self.steps.to_string(),
            SamplerKind::Ddim => format!("ddim{}", self.steps),
        }
    }

    /// The OT window in this run's respaced indices.
    pub fn ot_window_steps(&self) -> (usize, usize) {
        (
            scale_step_index(self.ot_window[0], self.steps),
            scale_step_index(self.ot_window[1], self.steps),
        )
    }

    /// The keys this run's method never reads. The manifest lists them, so that the `rho` of a
    /// `dit` set is not taken for an active setting.
    pub fn unused_keys(&self) -> Vec<&'static str> {
        const SEMANTIC: [&str; 5] = ["t-upper", "t-lower", "beta-n", "beta-s", "noise"];
        const DISTRIBUTION: [&str; 6] = [
            "support-points",
            "rho",
            "sinkhorn-eps",
            "sinkhorn-iterations",
            "sinkhorn-log-domain",
            "ot-window",
        ];
        let mut unused = Vec::new();
        if self.method != Method::Dmgd {
            unused.extend(["semantic", "distribution"]);
        }
        if self.method == Method::Random {
            // Random picks read the IPC and the seed only.
            unused.extend(&SAMPLING_KEYS[2..]);
        }
        if !self.uses_soft_labels() {
            unused.extend(SEMANTIC);
        }
        if !self.uses_ot() {
            unused.extend(DISTRIBUTION);
        }
        // k-means finds DMGD's support points and mgd3's modes.
        if !self.uses_ot() && self.method != Method::Mgd3 {
            unused.push("kmeans-iterations");
        }
        if self.method != Method::Mgd3 {
            unused.extend(["mode-lambda", "mode-stop"]);
        }
        unused
    }

    /// Checks values a user could set wrong; names the key and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |key: &str, expected: &str| Err(format!("`{key}`: expected {expected}"));
        if self.ipc == 0 {
            return fail("ipc", "at least 1");
        }
        // Only the keys the method reads are checked (see `unused_keys`).
        let samples = self.method != Method::Random;
        if samples && (self.steps < 2 || self.steps > 1000) {
            return fail("steps", "2..=1000");
        }
        if samples && self.class_batch == 0 {
            return fail("class-batch", "at least 1");
        }
        if self.uses_soft_labels() && (self.t_lower >= self.t_upper || self.t_upper >= 1000) {
            return fail("t-lower / t-upper", "t-lower < t-upper < 1000");
        }
        // Above t-upper the soft label is beta_n * noise alone; with beta_n 0 it is all zeros and
        // its standardisation divides by a zero std (sampling diverged in the study that tried it).
        if self.uses_soft_labels() && !(self.beta_n > 0.0) {
            return fail(
                "beta-n",
                "a positive number with Semantic Matching on (the exploration phase's label is beta-n x noise)",
            );
        }
        if self.uses_ot() && self.support_points == 0 {
            return fail("support-points", "at least 1");
        }
        if self.uses_ot() && !(self.sinkhorn_eps > 0.0) {
            return fail("sinkhorn-eps", "a positive number");
        }
        if self.uses_ot() && (self.ot_window[0] > self.ot_window[1] || self.ot_window[1] >= 50) {
            return fail("ot-window", "[first, last] with first <= last < 50");
        }
        if self.sampler == SamplerKind::Ddim && self.method != Method::Dit {
            return fail(
                "sampler",
                "ddpm for guided methods (their guidance shifts the DDPM posterior mean); ddim is for method = \"dit\"",
            );
        }
        if self.method == Method::Dmgd && !self.semantic && !self.distribution {
            return fail(
                "semantic / distribution",
                "at least one DMGD term on (use method = \"dit\" for neither)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_described_once() {
        dmgd_run::settings::assert_described::<DistillConfig>();
        let mut keys: Vec<&str> = SETTINGS.iter().map(|(key, _)| *key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len());
        let sampling = <SamplingConfig as dmgd_run::Settings>::described();
        assert_eq!(sampling.len(), SAMPLING_KEYS.len());
    }

    #[test]
    fn window_maps_proportionally() {
        assert_eq!(scale_step_index(30, 50), 30);
        assert_eq!(scale_step_index(45, 50), 45);
        assert_eq!(scale_step_index(45, 100), 91); // 45 * 99 / 49 = 90.9
        assert_eq!(scale_step_index(25, 25), 12); // 25 * 24 / 49 = 12.2
    }

    #[test]
    fn toml_keys_are_kebab_case_and_unknown_keys_fail() {
        let cfg: DistillConfig =
            toml::from_str("rho = 0.05\nsupport-points = 20\nmethod = \"mgd3\"").unwrap();
        assert_eq!(cfg.rho, 0.05);
        assert_eq!(cfg.support_points, 20);
        assert_eq!(cfg.method, Method::Mgd3);
        assert_eq!(cfg.steps, 50);
        let err = toml::from_str::<DistillConfig>("roh = 1.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("roh"), "{err}");
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(DistillConfig::default().validate(), Ok(()));
        let cfg = DistillConfig {
            t_lower: 950,
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().contains("t-lower"));
        let cfg = DistillConfig {
            beta_n: 0.0,
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().contains("beta-n"));
        let cfg = DistillConfig {
            beta_n: 0.0,
            semantic: false,
            ..Default::default()
        };
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn unused_keys_follow_the_method() {
        let keys = |cfg: &DistillConfig| cfg.unused_keys();
        let json = serde_json::to_value(DistillConfig::default()).unwrap();
        let all: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys(&DistillConfig::default()),
            ["mode-lambda", "mode-stop"]
        );
        for method in [Method::Dit, Method::Mgd3, Method::Random] {
            let cfg = DistillConfig {
                method,
                ..Default::default()
            };
            for key in keys(&cfg) {
                assert!(all.iter().any(|k| *k == key), "{key} is not a config key");
            }
        }
        let dit = keys(&DistillConfig {
            method: Method::Dit,
            ..Default::default()
        });
        assert!(dit.contains(&"rho") && dit.contains(&"beta-n") && dit.contains(&"semantic"));
        assert!(!dit.contains(&"cfg-scale") && !dit.contains(&"seed"));
        let mgd3 = keys(&DistillConfig {
            method: Method::Mgd3,
            ..Default::default()
        });
        assert!(!mgd3.contains(&"kmeans-iterations") && !mgd3.contains(&"mode-lambda"));
        assert!(mgd3.contains(&"support-points"));
        let no_semantic = keys(&DistillConfig {
            semantic: false,
            ..Default::default()
        });
        assert_eq!(
            no_semantic,
            [
                "t-upper",
                "t-lower",
                "beta-n",
                "beta-s",
                "noise",
                "mode-lambda",
                "mode-stop"
            ]
        );
        // A random subset reads method, ipc and seed only: every other key is listed, so a
        // new key cannot go unclassified.
        let mut random = keys(&DistillConfig {
            method: Method::Random,
            ..Default::default()
        });
        random.extend(["method", "ipc", "seed"]);
        random.sort_unstable();
        let mut all: Vec<&str> = all.iter().map(|k| k.as_str()).collect();
        all.sort_unstable();
        assert_eq!(random, all);
    }

    #[test]
    fn keys_a_method_never_reads_are_not_checked() {
        let dit = DistillConfig {
            method: Method::Dit,
            support_points: 0,
            ot_window: [45, 30],
            t_lower: 950,
            ..Default::default()
        };
        assert_eq!(dit.validate(), Ok(()));
        let no_distribution = DistillConfig {
            distribution: false,
            support_points: 0,
            ..Default::default()
        };
        assert_eq!(no_distribution.validate(), Ok(()));
        let dmgd = DistillConfig {
            support_points: 0,
            ..Default::default()
        };
        assert!(dmgd.validate().unwrap_err().contains("support-points"));
    }

    #[test]
    fn shipped_fashion_mnist_settings_parse_and_validate() {
        let parse = |text: &str| -> DistillConfig { toml::from_str(text).unwrap() };
        let current = parse(include_str!("../../../configs/fashion-mnist-tuned.toml"));
        let defaults = DistillConfig::default();
        assert_eq!(
            (current.cfg_scale, current.rho, current.beta_n),
            (1.5, defaults.rho, 0.5)
        );
        let previous = parse(include_str!(
            "../../../configs/fashion-mnist-tuned-2026-11.toml"
        ));
        assert_eq!(
            (previous.cfg_scale, previous.rho, previous.beta_n),
            (2.0, 2.0, 0.2)
        );
        for cfg in [current, previous] {
            assert_eq!(cfg.method, Method::Dmgd);
            assert_eq!(cfg.validate(), Ok(()));
        }
    }
}
