//! ImageFolder datasets (`root/<class>/<image>.png|jpg`): reading with a class order,
//! and writing `root/<class>/<index>.png` through a staged directory.

use crate::atomic::StagedDir;
use crate::class_source::ClassSource;
use crate::pixels::encode_png;
use crate::preprocess::{adm_center_crop, resize_center_crop, to_rgb, Resize};
use crate::{DataError, ImageSet, ImageShape};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "JPEG"];

/// How to read an image folder.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Class folders in label order; `None` = every sub-folder, sorted by name.
    pub classes: Option<Vec<String>>,
    pub resize: Resize,
    /// Force 1 (grayscale) or 3 (RGB) channels; `None` = 1 if the first image is grayscale, else 3.
    pub channels: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            classes: None,
            resize: Resize::Keep,
            channels: None,
        }
    }
}

/// The image files of each class, classes in label order, files sorted by name.
pub fn list(
    root: &Path,
    classes: Option<&[String]>,
) -> Result<(Vec<String>, Vec<Vec<PathBuf>>), DataError> {
    if !root.is_dir() {
        return Err(DataError::NoSuchFolder { path: root.into() });
    }
    let class_names: Vec<String> = match classes {
        Some(list) => list.to_vec(),
        None => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(root).map_err(|e| DataError::io(root, e))? {
                let entry = entry.map_err(|e| DataError::io(root, e))?;
                if entry.path().is_dir() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            names.retain(|n| !n.starts_with('.'));
            names.sort();
            names
        }
    };
    if class_names.is_empty() {
        return Err(DataError::NoClasses { path: root.into() });
    }
    let mut files = Vec::with_capacity(class_names.len());
    for class in &class_names {
        let dir = root.join(class);
        if !dir.is_dir() {
            return Err(DataError::ClassMissing {
                class: class.clone(),
                path: root.into(),
            });
        }
        let mut images = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
            let path = entry.map_err(|e| DataError::io(&dir, e))?.path();
            let is_image = path
                .extension()
                .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_string_lossy().as_ref()));
            if is_image && !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                images.push(path);
            }
        }
        if images.is_empty() {
            return Err(DataError::EmptyClass { path: dir });
        }
        images.sort();
        files.push(images);
    }
    Ok((class_names, files))
}

/// Reads an image folder into memory, every image brought to one shape.
pub fn read(root: &Path, options: &ReadOptions) -> Result<ImageSet, DataError> {
    let (class_names, files) = list(root, options.classes.as_deref())?;
    let labelled: Vec<(usize, &PathBuf)> = files
        .iter()
        .enumerate()
        .flat_map(|(y, paths)| paths.iter().map(move |p| (y, p)))
        .collect();
    let channels = match options.channels {
        Some(c) => c,
        None => channels_of(labelled[0].1)?,
    };
    read_files(&labelled, class_names, options.resize, channels, None)
}

/// 1 if the image is grayscale, else 3.
fn channels_of(path: &Path) -> Result<usize, DataError> {
    Ok(if decode(path)?.color().has_color() {
        3
    } else {
        1
    })
}

/// Decodes labelled files (in parallel) into a set; every image must come out at one size,
/// `expected` when given, else the first image's.
fn read_files(
    labelled: &[(usize, &PathBuf)],
    class_names: Vec<String>,
    resize: Resize,
    channels: usize,
    expected: Option<ImageShape>,
) -> Result<ImageSet, DataError> {
    let images: Vec<(Vec<u8>, u32, u32)> = labelled
        .par_iter()
        .map(|&(_, path)| load_one(path, resize, channels))
        .collect::<Result<_, _>>()?;
    let shape = expected.unwrap_or(ImageShape {
        channels,
        height: images[0].2 as usize,
        width: images[0].1 as usize,
    });
    let mut pixels = Vec::with_capacity(images.len() * shape.numel());
    for ((chw, w, h), (_, path)) in images.iter().zip(labelled) {
        if (*w as usize, *h as usize) != (shape.width, shape.height) {
            return Err(DataError::SizeMismatch {
                path: (*path).clone(),
                found: format!("{w}x{h}"),
                expected: format!("{}x{}", shape.width, shape.height),
            });
        }
        pixels.extend_from_slice(chw);
    }
    Ok(ImageSet {
        shape,
        pixels,
        labels: labelled.iter().map(|&(y, _)| y).collect(),
        class_names,
    })
}

/// An image folder whose classes are decoded only when asked for: what a run over
/// ImageNet-1K (150 GB of pixels at 256 px) needs, one class group at a time.
pub struct LazyFolder {
    root: PathBuf,
    resize: Resize,
    class_names: Vec<String>,
    files: Vec<Vec<PathBuf>>,
    shape: ImageShape,
}

impl LazyFolder {
    /// Lists the folder and decodes its first image (for the shape); nothing else is read.
    pub fn open(root: &Path, options: &ReadOptions) -> Result<LazyFolder, DataError> {
        let (class_names, files) = list(root, options.classes.as_deref())?;
        let first = &files[0][0];
        let channels = match options.channels {
            Some(c) => c,
            None => channels_of(first)?,
        };
        let (_, w, h) = load_one(first, options.resize, channels)?;
        Ok(LazyFolder {
            root: root.to_path_buf(),
            resize: options.resize,
            class_names,
            files,
            shape: ImageShape {
                channels,
                height: h as usize,
                width: w as usize,
            },
        })
    }
}

impl ClassSource for LazyFolder {
    fn shape(&self) -> ImageShape {
        self.shape
    }

    fn class_len(&self, class: usize) -> usize {
        self.files[class].len()
    }

    fn check_classes(&self, classes: &[usize]) -> Result<(), DataError> {
        let files: Vec<&PathBuf> = classes.iter().flat_map(|&c| &self.files[c]).collect();
        files.par_iter().try_for_each(|path| check_header(path))
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn class_images(&self, class: usize) -> Result<ImageSet, DataError> {
        let labelled: Vec<(usize, &PathBuf)> =
            self.files[class].iter().map(|p| (class, p)).collect();
        read_files(
            &labelled,
            self.class_names.clone(),
            self.resize,
            self.shape.channels,
            Some(self.shape),
        )
    }

    /// sha256 over the shape, the preprocessing, and each file's path (relative to the root)
    /// and size: reading every pixel of ImageNet-1K to name it would take as long as the run.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("{}|{:?}|", self.shape, self.resize).as_bytes());
        for (name, paths) in self.class_names.iter().zip(&self.files) {
            h.update(format!("class {name}\n").as_bytes());
            for path in paths {
                let relative = path.strip_prefix(&self.root).unwrap_or(path);
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                h.update(format!("{}|{size}\n", relative.display()).as_bytes());
            }
        }
        format!("{:x}", h.finalize())
    }
}

fn decode(path: &Path) -> Result<image::DynamicImage, DataError> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    reader.decode().map_err(|source| DataError::Decode {
        path: path.into(),
        source,
    })
}

/// Reads an image's header (format and size) without decoding its pixels.
fn check_header(path: &Path) -> Result<(), DataError> {
    image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .into_dimensions()
        .map(|_| ())
        .map_err(|source| DataError::Decode {
            path: path.into(),
            source,
        })
}

/// Decodes, resizes and returns one image as (C, H, W) u8 with its width and height.
fn load_one(
    path: &Path,
    resize: Resize,
    channels: usize,
) -> Result<(Vec<u8>, u32, u32), DataError> {
    let img = decode(path)?;
    let img = match resize {
        Resize::Keep => img,
        Resize::AdmCenterCrop(size) => adm_center_crop(&to_rgb(img), size).into(),
        Resize::CenterCrop(size) => resize_center_crop(&to_rgb(img), size, size).into(),
        Resize::CenterCropOf { short, size } => {
            resize_center_crop(&to_rgb(img), short, size).into()
        }
    };
    let (w, h) = (img.width(), img.height());
    let plane = (w * h) as usize;
    let chw = if channels == 1 {
        img.into_luma8().into_raw()
    } else {
        let hwc = img.into_rgb8().into_raw();
        let mut chw = vec![0u8; hwc.len()];
        for i in 0..plane {
            for c in 0..3 {
                chw[c * plane + i] = hwc[i * 3 + c];
            }
        }
        chw
    };
    Ok((chw, w, h))
}

/// The file name of the `index`-th image of a class: `<index>.png`, zero-padded so that
/// name order is generation order.
pub fn image_file_name(index: usize) -> String {
    format!("{index:05}.png")
}

/// Writes `set` as `root/<class>/<index>.png` (every class folder, even empty ones), staged
/// under a temporary name and renamed into place: an error leaves no partial output.
pub fn write(set: &ImageSet, root: &Path, overwrite: bool) -> Result<PathBuf, DataError> {
    let staged = StagedDir::new(root, overwrite)?;
    write_into(set, staged.path())?;
    staged.commit()
}

/// Writes the images of `set` into an existing directory `dir`.
pub fn write_into(set: &ImageSet, dir: &Path) -> Result<(), DataError> {
    for class in &set.class_names {
        let class_dir = dir.join(class);
        std::fs::create_dir_all(&class_dir).map_err(|e| DataError::io(&class_dir, e))?;
    }
    let mut next_index = vec![0usize; set.num_classes()];
    let jobs: Vec<(usize, PathBuf)> = set
        .labels
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let path = dir
                .join(&set.class_names[y])
                .join(image_file_name(next_index[y]));
            next_index[y] += 1;
            (i, path)
        })
        .collect();
    jobs.par_iter().try_for_each(|(i, path)| {
        let bytes = encode_png(set.shape, set.image(*i), path)?;
        std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_set(channels: usize) -> ImageSet {
        let shape = ImageShape {
            channels,
            height: 5,
            width: 4,
        };
        let n = 6;
        ImageSet {
            shape,
            pixels: (0..n * shape.numel())
                .map(|i| (i * 7 % 256) as u8)
                .collect(),
            labels: vec![0, 1, 2, 0, 1, 2],
            class_names: vec!["b".into(), "a".into(), "c".into()],
        }
    }

    #[test]
    fn a_corrupt_file_of_the_last_class_is_found_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        write(&tiny_set(1), &root, false).unwrap();
        let bad = root.join("c").join("00099.png");
        std::fs::write(&bad, b"not a png").unwrap();
        let folder = LazyFolder::open(&root, &ReadOptions::default()).unwrap();
        assert_eq!(folder.class_len(2), 3);
        folder.check_classes(&[0, 1]).unwrap();
        let err = folder.check_classes(&[0, 1, 2]).unwrap_err().to_string();
        assert!(err.contains("00099.png"), "{err}");
    }

    #[test]
    fn write_then_read_is_lossless_in_class_list_order() {
        for channels in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("set");
            let set = tiny_set(channels);
            write(&set, &root, false).unwrap();
            let options = ReadOptions {
                classes: Some(set.class_names.clone()),
                ..Default::default()
            };
            let back = read(&root, &options).unwrap();
            // Reading groups by class; compare with the set regrouped the same way.
            let order: Vec<usize> = set.indices_by_class().concat();
            let expected = set.subset(&order);
            assert_eq!(back.shape, expected.shape);
            assert_eq!(back.labels, expected.labels);
            assert_eq!(back.pixels, expected.pixels);
        }
    }

    #[test]
    fn existing_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&tiny_set(1), dir.path(), false).unwrap_err();
        assert!(matches!(err, DataError::OutputExists { .. }));
    }

    #[test]
    fn empty_class_and_corrupt_png_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cat")).unwrap();
        std::fs::create_dir_all(root.join("dog")).unwrap();
        std::fs::write(root.join("dog/0.png"), b"not a png").unwrap();
        let err = read(root, &ReadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("cat") && err.contains("no PNG"), "{err}");
        std::fs::write(root.join("cat/0.png"), b"still not a png").unwrap();
        let err = read(root, &ReadOptions::default()).unwrap_err().to_string();
        assert!(err.contains("cat/0.png") && err.contains("decode"), "{err}");
    }

    #[test]
    fn missing_listed_class_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(&tiny_set(1), &dir.path().join("set"), false).unwrap();
        let options = ReadOptions {
            classes: Some(vec!["a".into(), "n02096294".into()]),
            ..Default::default()
        };
        let err = read(&dir.path().join("set"), &options)
            .unwrap_err()
            .to_string();
        assert!(err.contains("n02096294"), "{err}");
    }
}
