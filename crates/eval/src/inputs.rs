//! An evaluation's inputs, read and checked before any training: every training set against
//! the first (the same classes, in order, and channels), the test set against them, its images
//! sized for the students, and the soft labels' teacher.

use crate::{check_compatible, EvalError, EvalSpec, Labels, NetworkRole, SetRecord, TrainChoices};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{DataOptions, DataSource, ImageSet};
use dmgd_student::nets::Net;
use dmgd_student::train::{net_input, test_resize};
use dmgd_student::{SoftLabels, TrainConfig};
use std::path::Path;

/// An evaluation ready to run: its spec, its sets and (soft labels) its teacher.
pub struct Prepared {
    pub spec: EvalSpec,
    pub train: Vec<ImageSet>,
    pub test: ImageSet,
    pub teacher: Option<Net>,
    /// The first training set's short name, for the default output folder.
    pub first_name: String,
}

/// Opens the device, reads the training sets `train` and the test set `test`, resolves the
/// training configuration and loads the `teacher` (soft labels only), all before any training.
pub fn prepare(
    choices: &TrainChoices,
    train: &[String],
    test: &str,
    teacher: Option<&Path>,
    options: &DataOptions,
) -> Result<Prepared, EvalError> {
    match (choices.labels, teacher) {
        (Labels::Soft, None) => return Err(EvalError::NoTeacher),
        (Labels::Hard, Some(_)) => return Err(EvalError::TeacherWithHardLabels),
        _ => {}
    }
    let device = choices.device.open()?; // before any data is read
    let sets = read_training_sets(train, options)?;
    let first_name = sets[0].short_name.clone();
    let train_sets: Vec<SetRecord> = sets.iter().map(|n| n.record.clone()).collect();
    let sets: Vec<ImageSet> = sets.into_iter().map(|n| n.set).collect();
    let mut config = choices.resolve(&sets)?;
    let test = read_test_set(test, options, &config, &sets[0], &train[0])?;
    let teacher = match teacher {
        Some(path) => {
            let net = choices.teacher_net.unwrap_or(choices.net);
            let input = net_input(&config, sets[0].shape);
            let classes = sets[0].num_classes();
            let (record, teacher) = crate::teacher::load(path, net, input, classes, &device)
                .map_err(|e| EvalError::Network {
                    role: NetworkRole::Teacher,
                    what: format!("{} as {net}", path.display()),
                    source: Box::new(e),
                })?;
            config.soft_labels = Some(SoftLabels {
                teacher: record,
                temperature: choices.temperature,
            });
            Some(teacher)
        }
        None => None,
    };
    let spec = EvalSpec {
        config,
        repeats: choices.repeats,
        train_sets,
        test: test.record,
    };
    Ok(Prepared {
        spec,
        train: sets,
        test: test.set,
        teacher,
        first_name,
    })
}

/// A set read from its source, with the record a spec keeps and a short name for folders.
pub struct NamedSet {
    pub set: ImageSet,
    pub record: SetRecord,
    pub short_name: String,
}

fn read(
    name: &str,
    options: &DataOptions,
    split: Split,
    resize: Option<dmgd_data::preprocess::Resize>,
) -> Result<NamedSet, EvalError> {
    let source = DataSource::resolve(name, options, split, resize)?;
    let set = source.load()?;
    Ok(NamedSet {
        record: SetRecord::of(&source, &set),
        short_name: source.short_name(),
        set,
    })
}

/// The training sets `names` (of the training split where a name is `fashion-mnist`).
pub fn read_training_sets(
    names: &[String],
    options: &DataOptions,
) -> Result<Vec<NamedSet>, EvalError> {
    let mut sets: Vec<NamedSet> = Vec::new();
    for name in names {
        let named = read(name, options, Split::Train, None)?;
        if let Some(first) = sets.first() {
            let (this, first_name) = (
                format!("training set {name}"),
                format!("training set {}", names[0]),
            );
            check_compatible(&named.set, &this, &first.set, &first_name, false)?;
        }
        sets.push(named);
    }
    Ok(sets)
}

/// The test set `name` (of the test split where it is `fashion-mnist`), its images resized as
/// `config`'s students test, checked against the first training set `first` (named
/// `first_name`).
pub fn read_test_set(
    name: &str,
    options: &DataOptions,
    config: &TrainConfig,
    first: &ImageSet,
    first_name: &str,
) -> Result<NamedSet, EvalError> {
    let test = read(name, options, Split::Test, test_resize(config, first.shape))?;
    let (this, first_name) = (
        format!("test set {name}"),
        format!("training set {first_name}"),
    );
    check_compatible(first, &first_name, &test.set, &this, false)?;
    Ok(test)
}

/// The real images `quality` compares with: the test split of `name`, or (`holdout`: N) the
/// last N images of every class of `data`'s training split, the images `pretrain
/// --holdout-per-class N` kept out of training.
pub fn read_reference(
    name: &str,
    holdout: Option<usize>,
    data: &str,
    options: &DataOptions,
) -> Result<NamedSet, EvalError> {
    let Some(n) = holdout else {
        return read(name, options, Split::Test, None);
    };
    let source = DataSource::resolve(data, options, Split::Train, None)?;
    let set = source.load()?.split_validation(n).1;
    let record = SetRecord {
        source: format!("{}, the last {n} images of every class", source.describe()),
        images: set.len(),
        fingerprint: set.fingerprint(),
    };
    Ok(NamedSet {
        set,
        record,
        short_name: format!("{}-holdout{n}", source.short_name()),
    })
}

/// The sets `quality` judges, each checked against `reference`: the same classes, channels
/// and size.
pub fn read_judged_sets(
    names: &[String],
    options: &DataOptions,
    reference: &ImageSet,
) -> Result<Vec<NamedSet>, EvalError> {
    let mut sets = Vec::new();
    for name in names {
        let named = read(name, options, Split::Train, None)?;
        let label = format!("image set {name}");
        check_compatible(&named.set, &label, reference, "the reference", true)?;
        sets.push(named);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_teacher_must_agree_before_any_set_is_read() {
        let absent = vec!["no-such-folder".to_string()];
        let options = DataOptions::default();
        let prepare = |labels, teacher: Option<&Path>| {
            let choices = TrainChoices {
                labels,
                ..TrainChoices::default()
            };
            prepare(&choices, &absent, "no-such-test", teacher, &options).err()
        };
        assert!(matches!(
            prepare(Labels::Soft, None),
            Some(EvalError::NoTeacher)
        ));
        let file = Path::new("teacher.safetensors");
        assert!(matches!(
            prepare(Labels::Hard, Some(file)),
            Some(EvalError::TeacherWithHardLabels)
        ));
        // Agreeing, the missing folder is what fails.
        assert!(matches!(
            prepare(Labels::Soft, Some(file)),
            Some(EvalError::Data(_))
        ));
    }
}
