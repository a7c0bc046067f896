//! Class lists in label order: built-in ImageNet-1K, ImageWoof, ImageNette, or a file.

use crate::DataError;
use std::path::Path;

const IMAGENET1K: &str = include_str!("../classes/imagenet1k_wnids.txt");
const IMAGEWOOF: &str = include_str!("../classes/imagewoof_wnids.txt");
const IMAGENETTE: &str = include_str!("../classes/imagenette_wnids.txt");

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The 1000 ImageNet-1K wnids; line k is label k of the official DiT checkpoints.
pub fn imagenet1k() -> Vec<String> {
    lines(IMAGENET1K)
}

/// ImageWoof's 10 wnids in the peers' label order (not sorted).
pub fn imagewoof() -> Vec<String> {
    lines(IMAGEWOOF)
}

/// ImageNette's 10 wnids in the peers' label order.
pub fn imagenette() -> Vec<String> {
    lines(IMAGENETTE)
}

/// Resolves `woof`, `nette`, `imagenet1k`, `fashion-mnist` or a path to a one-class-per-line file.
pub fn resolve(name: &str) -> Result<Vec<String>, DataError> {
    match name {
        "woof" | "imagewoof" => Ok(imagewoof()),
        "nette" | "imagenette" => Ok(imagenette()),
        "imagenet1k" | "imagenet" => Ok(imagenet1k()),
        "fashion-mnist" => Ok(crate::fashion_mnist::CLASS_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect()),
        _ => {
            let path = Path::new(name);
            if !path.is_file() {
                return Err(DataError::UnknownClassList { name: name.into() });
            }
            let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
            let classes = lines(&text);
            if classes.is_empty() {
                return Err(DataError::EmptyClassList { path: path.into() });
            }
            Ok(classes)
        }
    }
}

/// Label index of each wnid in ImageNet-1K (for conditioning the official DiT on a subset).
pub fn imagenet1k_label(wnid: &str) -> Option<usize> {
    IMAGENET1K.lines().position(|l| l.trim() == wnid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lists_have_the_documented_order() {
        let woof = imagewoof();
        assert_eq!(woof.len(), 10);
        assert_eq!(woof[0], "n02096294");
        assert_eq!(woof[9], "n02105641");
        let nette = imagenette();
        assert_eq!(nette[0], "n01440764");
        assert_eq!(nette[9], "n03888257");
        let all = imagenet1k();
        assert_eq!(all.len(), 1000);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
    }

    #[test]
    fn subsets_are_imagenet_classes() {
        // tench is ImageNet label 0; the woof classes are all canids (labels 151..=280, dingo = 273).
        assert_eq!(imagenet1k_label("n01440764"), Some(0));
        assert_eq!(imagenet1k_label("n02115641"), Some(273));
        for wnid in imagewoof() {
            let label = imagenet1k_label(&wnid).unwrap();
            assert!((151..=280).contains(&label), "{wnid} -> {label}");
        }
    }

    #[test]
    fn unknown_name_is_explained() {
        let err = resolve("wolf").unwrap_err().to_string();
        assert!(err.contains("`wolf`") && err.contains("woof"), "{err}");
    }
}
