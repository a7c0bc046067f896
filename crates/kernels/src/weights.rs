//! Reading safetensors files with an error that says what is wrong with a file that is not
//! one: candle's reader takes the first 8 bytes of any file as a header length, so a text
//! file or a renamed pickle fails with "header too large".

use candle_core::{Device, Result, Tensor};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The tensors of the safetensors file `path`, on `device`.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    check_header(path)?;
    candle_core::safetensors::load(path, device)
}

/// The format: an 8-byte little-endian header length, then that many bytes of JSON (an object)
/// inside the file.
fn check_header(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut start = [0u8; 9];
    let header = match file.read_exact(&mut start) {
        Ok(()) => u64::from_le_bytes(start[..8].try_into().expect("8 bytes")),
        Err(_) => return Err(not_safetensors(format!("{size} bytes, too short"))),
    };
    if header > size - 8 || start[8] != b'{' {
        return Err(not_safetensors(format!(
            "it must start with the length of a JSON header (its first 8 bytes give {header} in \
             a file of {size} bytes)"
        )));
    }
    Ok(())
}

/// A plain message: the file is at fault, so no backtrace (candle's `bail!` takes one).
fn not_safetensors(why: String) -> candle_core::Error {
    candle_core::Error::Msg(format!("not a safetensors file: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.safetensors");
        std::fs::write(&path, bytes).unwrap();
        load_safetensors(&path, &Device::Cpu)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn names_a_file_that_is_not_safetensors() {
        let err = error_for(b"# a README saved under the wrong name\n");
        assert!(
            err.contains("not a safetensors file") && err.contains("38 bytes"),
            "{err}"
        );
        assert!(error_for(b"abc").contains("too short"));
    }

    #[test]
    fn reads_a_safetensors_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.safetensors");
        let t = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([("w".to_string(), t)]), &good).unwrap();
        let back = load_safetensors(&good, &Device::Cpu).unwrap();
        assert_eq!(back["w"].to_vec1::<f32>().unwrap(), vec![1., 2., 3.]);
    }
}
