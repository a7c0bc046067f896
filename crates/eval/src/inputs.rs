//! An evaluation's sets, read and checked before any training: every training set against the
//! first (the same classes, in order, and channels), the test set against them, its images
//! sized for the students.

use crate::{check_compatible, EvalError, SetRecord};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{DataOptions, DataSource, ImageSet};
use dmgd_student::train::test_resize;
use dmgd_student::TrainConfig;

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
