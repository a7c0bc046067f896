use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path} already exists")]
    ResultsExist { path: PathBuf },
    #[error("{dir} holds {count} network report(s) finished by an interrupted evaluation")]
    Unfinished { dir: PathBuf, count: usize },
    #[error("{path} {why}")]
    NetworkMismatch { path: PathBuf, why: String },
    #[error("{path} is not a finished-network report: {source}")]
    NotAReport {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{set} has {found}, but {reference} has {expected}: they must match in order")]
    Incompatible {
        set: String,
        found: String,
        reference: String,
        expected: String,
    },
    #[error("the sets have {ipcs:?} images per class, and the protocol's defaults follow the IPC (minimax: the epochs, rded: the batch size): evaluate them separately or set them")]
    MixedIpc { ipcs: Vec<usize> },
    #[error("{reason}")]
    InvalidChoice { reason: String },
    #[error("a Fréchet distance needs at least 2 images, {set} has {count}")]
    TooFewImages { set: String, count: usize },
    #[error("{method:?} selection needs an embedding network")]
    NoEmbedding {
        method: dmgd_distill::coreset::CoresetMethod,
    },
    #[error("neither XDG_CACHE_HOME nor HOME is set: no cache for the embedding network")]
    NoCacheDir,
    /// A network that a command loads or trains as a tool failed; `what` names it.
    #[error("{role} {what}")]
    Network {
        role: NetworkRole,
        what: String,
        #[source]
        source: Box<EvalError>,
    },
    #[error("soft labels need a teacher: a network trained on the full real data")]
    NoTeacher,
    #[error("a teacher is for soft labels, and the labels are hard")]
    TeacherWithHardLabels,
    #[error(transparent)]
    Diffusion(#[from] dmgd_diffusion::DiffusionError),
    #[error(transparent)]
    Manifest(#[from] dmgd_run::ManifestError),
    #[error(transparent)]
    Student(#[from] dmgd_student::StudentError),
    #[error(transparent)]
    Data(#[from] dmgd_data::DataError),
    #[error("tensor computation failed")]
    Tensor(#[from] candle_core::Error),
}

/// What a [`EvalError::Network`] network was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkRole {
    /// Coreset selection's embedding (herding, k-center).
    Embedding,
    /// `quality`'s judge.
    Classifier,
    /// Soft labels' teacher.
    Teacher,
}

impl std::fmt::Display for NetworkRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetworkRole::Embedding => "embedding network",
            NetworkRole::Classifier => "classifier",
            NetworkRole::Teacher => "teacher",
        })
    }
}

impl EvalError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EvalError::Data(dmgd_data::DataError::io(path, source))
    }
}
