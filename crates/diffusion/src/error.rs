//! Errors of the diffusion crate: every variant names the key, file or preset it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DiffusionError {
    #[error("unknown DiT preset {name:?}; known presets: {known}")]
    UnknownPreset { name: String, known: String },

    #[error("input size {input_size} is not divisible by the patch size {patch_size} ({preset})")]
    PatchDoesNotDivide {
        preset: String,
        input_size: usize,
        patch_size: usize,
    },

    #[error("hidden size {hidden_size} is not divisible by {num_heads} heads ({preset})")]
    HeadsDoNotDivide {
        preset: String,
        hidden_size: usize,
        num_heads: usize,
    },

    #[error(
        "hidden size {hidden_size} must be a multiple of 4 for the 2-D sin-cos table ({preset})"
    )]
    PosEmbedDim { preset: String, hidden_size: usize },

    #[error("input of shape {found:?} does not match the model ({expected})")]
    InputShape { found: Vec<usize>, expected: String },

    #[error("checkpoint {path}: {problems}")]
    CheckpointMismatch { path: PathBuf, problems: String },

    #[error("checkpoint {path}: cannot infer the model configuration: {reason}")]
    CannotInferConfig { path: PathBuf, reason: String },

    #[error("checkpoint {path}: refused: the pickle references `{module}.{name}`, which is not a tensor-rebuild global (allowed: {allowed})")]
    ForbiddenPickleGlobal {
        path: PathBuf,
        module: String,
        name: String,
        allowed: String,
    },

    #[error("checkpoint {path}: unsupported file type (expected .safetensors, .pt, .pth or .bin)")]
    UnsupportedCheckpoint { path: PathBuf },

    #[error("checkpoint {path}: {reason}")]
    BadCheckpoint { path: PathBuf, reason: String },

    #[error("checkpoint {path} has no entry `{entry}`; its entries are {}", entries.join(", "))]
    NoSuchEntry {
        path: PathBuf,
        entry: String,
        entries: Vec<String>,
    },

    #[error("checkpoint {path} is a plain state dict: it has no entry `{entry}`")]
    NotATrainingCheckpoint { path: PathBuf, entry: String },

    #[error("the shipped model was not found; looked in: {} (set DMGD_MODELS to a folder that holds fashion-mnist-dit/, or name a model)", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    ShippedModelNotFound { tried: Vec<PathBuf> },

    #[error("training images must be square, found {shape}")]
    NotSquare { shape: String },

    #[error("{} already holds a pretraining run", dir.display())]
    RunExists { dir: PathBuf },

    #[error("the training data differ from the data of the run in {}", dir.display())]
    OtherData { dir: PathBuf },

    #[error("timestep respacing {spec:?}: {reason}")]
    BadRespacing { spec: String, reason: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("{context}: {source}")]
    Candle {
        context: String,
        #[source]
        source: candle_core::Error,
    },

    #[error(transparent)]
    Tensor(#[from] candle_core::Error),

    #[error(transparent)]
    Data(#[from] dmgd_data::DataError),

    #[error(transparent)]
    Manifest(#[from] dmgd_run::ManifestError),
}

impl DiffusionError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DiffusionError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, DiffusionError>;
