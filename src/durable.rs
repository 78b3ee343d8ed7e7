//! Replacing a small file so that a crash or power cut leaves the old
//! version or the new one, never a torn mix: written beside it, synced,
//! renamed over it, and the folder synced so the rename itself lasts.
//! The trusted devices, the daily counts, the alert and the last good
//! campaign bundles are all kept this way.

use std::fs;
use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` as the whole of `path`, creating its folder if need be.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(".new");
    let fresh = Path::new(&fresh);
    {
        let mut file = fs::File::create(fresh)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(fresh, path)?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/alert.json");
        super::replace(&path, b"old").unwrap();
        super::replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("deep")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["alert.json"]);
    }
}
