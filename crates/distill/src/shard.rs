//! Splitting the classes of a run across machines (`--shard i/n`), and the seed of every image.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based): `--shard 0/4` .. `--shard 3/4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The class groups of this shard. Classes are first cut into groups of `group_size`
    /// consecutive classes (one DiT batch each), and whole groups are dealt round-robin,
    /// so a sharded run batches exactly the classes an unsharded run batches together:
    /// the shards' outputs together equal the unsharded output.
    pub fn groups(&self, num_classes: usize, group_size: usize) -> Vec<Vec<usize>> {
        let group_size = group_size.max(1);
        (0..num_classes)
            .collect::<Vec<_>>()
            .chunks(group_size)
            .enumerate()
            .filter(|(g, _)| g % self.count == self.index)
            .map(|(_, classes)| classes.to_vec())
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard `{s}`: expected `i/n` with 0 <= i < n, e.g. `0/4`");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The seed of image `index` of class `class`: any image can be regenerated alone, whatever
/// the shard, batch or resume point. SplitMix64 over the three numbers.
pub fn image_seed(seed: u64, class: usize, index: usize) -> u64 {
    let mut z = seed;
    for v in [class as u64, index as u64] {
        z = splitmix64(z ^ splitmix64(v.wrapping_add(0x632B_E59B_D9B4_E019)));
    }
    z
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_groups() {
        let whole = Shard::WHOLE.groups(10, 3);
        assert_eq!(
            whole,
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
        );
        let a = Shard { index: 0, count: 2 }.groups(10, 3);
        let b = Shard { index: 1, count: 2 }.groups(10, 3);
        assert_eq!(a, vec![vec![0, 1, 2], vec![6, 7, 8]]);
        assert_eq!(b, vec![vec![3, 4, 5], vec![9]]);
    }

    #[test]
    fn shard_flag_parses_and_explains() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1", "a/b", "0/0"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("i/n"), "{err}");
        }
    }

    #[test]
    fn image_seeds_differ_by_class_and_index() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..50 {
            for i in 0..50 {
                assert!(seen.insert(image_seed(0, c, i)));
            }
        }
        assert_eq!(image_seed(3, 4, 5), image_seed(3, 4, 5));
        assert_ne!(image_seed(3, 4, 5), image_seed(4, 4, 5));
    }
}
