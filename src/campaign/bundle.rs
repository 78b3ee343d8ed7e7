//! A campaign bundle: one campaign folder as one file, which a province
//! signs with the standard `minisign` tool and publishes over https for a
//! fleet of gateways to pull (see [`super::fetch`]).
//!
//! A bundle is a POSIX ustar archive of the folder's regular files, made by
//! [`pack`] (`portico campaign pack`) and read back by [`load`]. What must
//! stay true:
//!
//! - The same folder always packs to the same bytes: files sorted by path,
//!   every header with mode 0644, owner 0, time 0 and no user or group
//!   name, so a province can re-pack and re-sign and a gateway's
//!   conditional request sees no change where there is none. Names that
//!   start with a dot (`.git`, `.DS_Store`, editor files) are left out.
//! - [`load`] never writes to disk: the archive is read in memory and the
//!   campaign goes through the same loader as a folder
//!   (`Campaign::from_files`), so a bundle passes exactly when `portico
//!   check` would pass its folder.
//! - Everything is bounded before it is believed: at most
//!   [`MAX_BUNDLE_BYTES`] in all, [`MAX_BUNDLE_ENTRIES`] entries, and
//!   `MAX_CAMPAIGN_FILE` per file, as in a folder. 4 MiB is over a
//!   hundred times a real campaign (the built-in one, 8 languages and a
//!   logo, packs to 28 KiB; images are capped at 12 KiB), still room for
//!   sixteen files at the per-file limit, and small enough that a 64 MB
//!   router holds two copies while it checks one and that 1 Mbit/s fetches
//!   it within the fetch's 60 s deadline. 256 entries is a hundred
//!   languages and their images, and bounds the work a hostile archive can
//!   ask for.
//! - Only regular files and folders are accepted. A symbolic or hard link,
//!   a device, a fifo, an absolute path, a `..`, a path given twice, pax or
//!   GNU extension headers, a damaged header and a truncated archive are
//!   each refused with a one-line reason, never skipped: `pack` makes none
//!   of them, so an archive holding one was not made by it.
//! - [`verify`] checks the minisign signature over the bundle's exact
//!   bytes; the caller verifies before it loads.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path};

use super::source::{BundleKey, CampaignSource};
use super::{Campaign, CampaignError, MAX_CAMPAIGN_FILE, read_campaign_file};

/// The largest bundle accepted, in bytes (see the module's comment).
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// The most entries (files and folders) a bundle may hold.
pub const MAX_BUNDLE_ENTRIES: usize = 256;

const BLOCK: usize = 512;
/// The end-of-archive marker: two zero blocks.
const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Packs the campaign folder `dir` into a bundle; every problem (the
/// campaign's own, or a file a bundle cannot hold) is one line.
pub fn pack(dir: &Path) -> Result<Vec<u8>, CampaignError> {
    Campaign::load(&CampaignSource::Folder(dir.to_owned()))?;
    let mut packer = Packer { root: dir, files: Vec::new(), size: END.len(), problems: Vec::new() };
    packer.walk("");
    let Packer { mut files, problems, size, .. } = packer;
    if !problems.is_empty() {
        return Err(CampaignError { problems });
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(size);
    for (path, bytes) in &files {
        let header = header(path, bytes.len() as u64, b'0').expect("path lengths were checked while walking");
        out.extend_from_slice(&header);
        out.extend_from_slice(bytes);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.extend_from_slice(&END);
    // The folder loaded, but it may name a file that was left out (a logo
    // under a hidden folder): what is published must load as it is.
    if let Err(mut e) = load(&out, &dir.display().to_string()) {
        e.problems
            .push(format!("{}: the bundle would not load (names that start with a dot are not packed)", dir.display()));
        return Err(e);
    }
    Ok(out)
}

struct Packer<'a> {
    root: &'a Path,
    /// Relative path (`/`-separated) and content.
    files: Vec<(String, Vec<u8>)>,
    /// The archive's size so far, end marker included.
    size: usize,
    problems: Vec<String>,
}

impl Packer<'_> {
    fn walk(&mut self, rel: &str) {
        let here = self.root.join(rel);
        let mut entries: Vec<fs::DirEntry> = match fs::read_dir(&here).and_then(|it| it.collect()) {
            Ok(entries) => entries,
            Err(e) => return self.problems.push(format!("{}: {e}", here.display())),
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if self.is_full() {
                return; // said once, by `add`
            }
            let shown = entry.path().display().to_string();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                self.problems.push(format!("{shown}: the name is not UTF-8; a bundle's names must be"));
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) => {
                    self.problems.push(format!("{shown}: {e}"));
                    continue;
                }
            };
            // A link to a file is packed as the file, as the folder loader
            // reads through it; a link to a folder is not followed (loops).
            let is_file = kind.is_file() || kind.is_symlink() && entry.path().metadata().is_ok_and(|m| m.is_file());
            if kind.is_dir() {
                self.walk(&path);
            } else if is_file {
                self.add(path, &shown);
            } else if kind.is_symlink() {
                self.problems.push(format!(
                    "{shown}: is a symbolic link to a folder or to nothing; a bundle holds regular files: copy them in"
                ));
            } else {
                self.problems.push(format!("{shown}: is not a regular file (a device, socket or fifo): remove it"));
            }
        }
    }

    fn is_full(&self) -> bool {
        self.size > MAX_BUNDLE_BYTES || self.files.len() > MAX_BUNDLE_ENTRIES
    }

    fn add(&mut self, path: String, shown: &str) {
        if split_path(&path).is_none() {
            return self.problems.push(format!(
                "{shown}: the path is too long for a bundle (at most 100 bytes for a name, 255 with its folders)"
            ));
        }
        let bytes = match read_campaign_file(self.root, &path) {
            Ok(bytes) => bytes,
            Err(e) => return self.problems.push(format!("{shown}: {e}")),
        };
        self.size += BLOCK + bytes.len().next_multiple_of(BLOCK);
        self.files.push((path, bytes));
        if self.files.len() > MAX_BUNDLE_ENTRIES {
            self.problems.push(format!(
                "{}: holds more than {MAX_BUNDLE_ENTRIES} files, the most a bundle may hold",
                self.root.display()
            ));
        } else if self.size > MAX_BUNDLE_BYTES {
            self.problems.push(format!(
                "{}: its files make a bundle of more than {MAX_BUNDLE_BYTES} bytes, the most a bundle may have",
                self.root.display()
            ));
        }
    }
}

/// Loads a bundle in memory, checked as `portico check` checks a folder;
/// files are named `origin/path` in the problems.
pub fn load(bundle: &[u8], origin: &str) -> Result<Campaign, CampaignError> {
    let refuse = |reason: String| CampaignError { problems: vec![format!("{origin}: {reason}")] };
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(refuse(format!("is {} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have", bundle.len())));
    }
    let files = read_archive(bundle).map_err(refuse)?;
    Campaign::from_files(origin, |rel| {
        // The same rule as in a folder (`read_campaign_file`), and the same
        // spelling of a path: `images//logo.svg` is `images/logo.svg`.
        let path = Path::new(rel);
        let mut key = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => key.push(part.to_str().unwrap_or_default()),
                _ => return Err("must be a path inside the campaign folder (no leading /, no ..)".to_owned()),
            }
        }
        if key.is_empty() {
            return Err("must be a path inside the campaign folder (no leading /, no ..)".to_owned());
        }
        files.get(&key.join("/")).map(|bytes| bytes.to_vec()).ok_or_else(|| "is not in the bundle".to_owned())
    })
}

/// The regular files of a ustar archive, by normalised path, or why the
/// archive is refused.
fn read_archive(bundle: &[u8]) -> Result<BTreeMap<String, &[u8]>, String> {
    let mut files = BTreeMap::new();
    let mut folders = std::collections::BTreeSet::new();
    let mut at = 0;
    let mut entries = 0;
    loop {
        let Some(block) = bundle.get(at..at + BLOCK) else {
            return Err(if at == bundle.len() {
                "is truncated: it ends without the end-of-archive marker".to_owned()
            } else {
                format!("is truncated: it ends inside the header at byte {at}")
            });
        };
        if block.iter().all(|&b| b == 0) {
            // The end: a second zero block, then nothing but the zeros tar
            // tools pad their records with.
            if bundle.get(at + BLOCK..at + 2 * BLOCK).is_none_or(|b| b.iter().any(|&b| b != 0)) {
                return Err(format!("is truncated or damaged: a lone zero block at byte {at}"));
            }
            if bundle[at..].iter().any(|&b| b != 0) {
                return Err(format!("has data after its end-of-archive marker (byte {at})"));
            }
            return Ok(files);
        }
        entries += 1;
        if entries > MAX_BUNDLE_ENTRIES {
            return Err(format!("holds more than {MAX_BUNDLE_ENTRIES} entries, the most a bundle may hold"));
        }
        let entry = Header::parse(block).map_err(|e| format!("the header at byte {at} {e}"))?;
        let shown = &entry.path;
        at += BLOCK;
        let kind = match entry.kind {
            b'0' | 0 => Kind::File,
            b'5' => Kind::Folder,
            other => {
                return Err(format!(
                    "{shown:?}: is {}; a bundle holds regular files and folders only (make it with portico campaign pack)",
                    kind_name(other)
                ));
            }
        };
        let path = normalise(&entry.path).map_err(|e| format!("{shown:?}: {e}"))?;
        if kind == Kind::File && entry.size > MAX_CAMPAIGN_FILE {
            return Err(format!(
                "{shown:?}: is larger than {MAX_CAMPAIGN_FILE} bytes, the most a campaign file may have"
            ));
        }
        if kind == Kind::Folder && entry.size != 0 {
            return Err(format!("{shown:?}: a folder entry with {} bytes of content: damaged", entry.size));
        }
        // Bounded by MAX_CAMPAIGN_FILE just above: no overflow.
        let size = entry.size as usize;
        let Some(data) = bundle.get(at..at + size) else {
            return Err(format!("is truncated: {shown:?} needs {size} bytes, {} are left", bundle.len() - at));
        };
        at += size.next_multiple_of(BLOCK);
        if at > bundle.len() {
            return Err(format!("is truncated: it ends inside the padding after {shown:?}"));
        }
        match kind {
            Kind::Folder if path.is_empty() => {} // `./`, as `tar -C dir .` writes it
            Kind::Folder => {
                if files.contains_key(&path) || !folders.insert(path) {
                    return Err(format!("{shown:?}: appears twice"));
                }
            }
            Kind::File => {
                if path.is_empty() {
                    return Err(format!("{shown:?}: a file without a name"));
                }
                if folders.contains(&path) || files.insert(path, data).is_some() {
                    return Err(format!("{shown:?}: appears twice"));
                }
            }
        }
    }
}

#[derive(PartialEq)]
enum Kind {
    File,
    Folder,
}

fn kind_name(flag: u8) -> String {
    match flag {
        b'1' => "a hard link".into(),
        b'2' => "a symbolic link".into(),
        b'3' => "a character device".into(),
        b'4' => "a block device".into(),
        b'6' => "a fifo".into(),
        b'7' => "a contiguous file".into(),
        b'x' | b'g' => "a pax extended header".into(),
        b'L' | b'K' => "a GNU long-name header".into(),
        other => format!("an entry of type {:?}", char::from(other)),
    }
}

/// `./a//b/` → `a/b`; refuses an absolute path and `..`.
fn normalise(path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("is an absolute path; a bundle's paths are relative to the campaign folder");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("goes outside the campaign folder (..)"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The fields of a ustar header this reader uses.
struct Header {
    path: String,
    size: u64,
    kind: u8,
}

impl Header {
    /// `Err` completes "the header at byte N …".
    fn parse(block: &[u8]) -> Result<Header, String> {
        let stored = octal(&block[148..156]).ok_or("has no checksum: not a tar archive, or damaged")?;
        let computed: u64 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(b) })
            .sum();
        if stored != computed {
            return Err("has a wrong checksum: not a tar archive, or damaged".into());
        }
        // POSIX ustar, or GNU tar's own format, whose plain entries are the
        // same but whose prefix field holds times instead.
        let posix = match &block[257..265] {
            b"ustar\x0000" => true,
            b"ustar  \0" => false,
            _ => return Err("is not a ustar header (an old tar format?)".into()),
        };
        let text = |field: &[u8]| {
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8(field[..end].to_vec()).map_err(|_| "has a name that is not UTF-8".to_owned())
        };
        let name = text(&block[..100])?;
        let prefix = if posix { text(&block[345..500])? } else { String::new() };
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if block[124] & 0x80 != 0 {
            return Err(format!("({path:?}) gives its size in base 256: far more than a bundle may hold"));
        }
        let size = octal(&block[124..136]).ok_or_else(|| format!("({path:?}) has no readable size"))?;
        Ok(Header { path, size, kind: block[156] })
    }
}

/// A ustar number: octal digits, maybe led by spaces, ended by NUL or
/// space; `None` for anything else.
fn octal(field: &[u8]) -> Option<u64> {
    let digits = field.iter().skip_while(|&&b| b == b' ');
    let mut value: u64 = 0;
    let mut ended = false;
    let mut any = false;
    for &b in digits {
        match b {
            b'0'..=b'7' if !ended => {
                value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
                any = true;
            }
            0 | b' ' => ended = true,
            _ => return None,
        }
    }
    any.then_some(value)
}

/// A ustar header for `path`, or `None` if the path does not fit its name
/// and prefix fields. Deterministic on purpose: see the module's comment.
fn header(path: &str, size: u64, kind: u8) -> Option<[u8; BLOCK]> {
    fn put_octal(field: &mut [u8], value: u64) {
        let digits = format!("{value:0width$o}", width = field.len() - 1);
        debug_assert_eq!(digits.len(), field.len() - 1, "{value} does not fit");
        field[..digits.len()].copy_from_slice(digits.as_bytes());
    }
    let (prefix, name) = split_path(path)?;
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    put_octal(&mut h[100..108], 0o644);
    put_octal(&mut h[108..116], 0); // uid
    put_octal(&mut h[116..124], 0); // gid
    put_octal(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0); // mtime
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar\x0000");
    put_octal(&mut h[329..337], 0); // devmajor
    put_octal(&mut h[337..345], 0); // devminor
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Some(h)
}

/// `path` as ustar's prefix (≤ 155 bytes) and name (≤ 100), split at a `/`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let (i, _) = path.match_indices('/').find(|(i, _)| path.len() - i - 1 <= 100)?;
    (i <= 155 && i + 1 < path.len()).then(|| (&path[..i], &path[i + 1..]))
}

/// Checks `signature` (the text of `FILE.minisig`) over the bundle's bytes.
/// Only prehashed signatures, the default of minisign since 0.10, are
/// taken: a legacy one (`minisign -S -l`) is refused with advice.
pub fn verify(bundle: &[u8], signature: &str, key: &BundleKey) -> Result<(), String> {
    use minisign_verify::Error;
    let signature = minisign_verify::Signature::decode(signature).map_err(|e| match e {
        Error::UnsupportedAlgorithm => "the signature is not an Ed25519 minisign signature".to_owned(),
        _ => "not a minisign signature (the four lines `minisign -S` writes to FILE.minisig)".to_owned(),
    })?;
    key.key.verify(bundle, &signature, false).map_err(|e| match e {
        Error::UnexpectedKeyId => "signed with another key than the configured one".to_owned(),
        Error::UnexpectedAlgorithm => {
            "a legacy signature (minisign -l): sign it again without -l, which signs a hash of the bundle".to_owned()
        }
        Error::InvalidSignature => {
            "the signature does not match: the bundle (or the signature's trusted comment) changed after signing"
                .to_owned()
        }
        other => format!("the signature cannot be checked: {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUEZONE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/campaigns/bluezone");

    /// A copy of the built-in campaign's folder.
    fn bluezone() -> tempfile::TempDir {
        fn copy(from: &Path, to: &Path) {
            fs::create_dir_all(to).unwrap();
            for entry in fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    copy(&entry.path(), &to.join(entry.file_name()));
                } else {
                    fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy(Path::new(BLUEZONE), dir.path());
        dir
    }

    /// An archive of `(path, type flag, content)` entries, as a hostile or
    /// careless tool might write it.
    fn archive(entries: &[(&str, u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, kind, data) in entries {
            out.extend_from_slice(&header(path, data.len() as u64, *kind).unwrap());
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(BLOCK), 0);
        }
        out.extend_from_slice(&END);
        out
    }

    fn refusal(bundle: &[u8]) -> String {
        let e = load(bundle, "test.tar").unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        e.to_string()
    }

    const TOML: &[u8] = b"name = \"x\"";

    #[test]
    fn the_built_in_campaign_packs_and_loads_as_the_same_campaign() {
        let dir = bluezone();
        let bundle = pack(dir.path()).unwrap();
        let loaded = load(&bundle, "bluezone.tar").unwrap();
        let builtin = Campaign::load(&CampaignSource::Builtin("bluezone".into())).unwrap();
        assert_eq!(loaded.name, builtin.name);
        assert_eq!(loaded.tags, builtin.tags);
        assert_eq!(loaded.locales[loaded.default].tag, "vi");
        assert_eq!(loaded.logo().map(|l| &l.bytes), builtin.logo().map(|l| &l.bytes));
    }

    #[test]
    fn packing_is_deterministic_and_leaves_hidden_files_out() {
        let dir = bluezone();
        let first = pack(dir.path()).unwrap();
        // What differs between two checkouts of the same campaign: times,
        // modes, version-control and desktop clutter.
        let vi = dir.path().join("locales/vi.toml");
        let file = fs::File::options().write(true).open(&vi).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)).unwrap();
        drop(file);
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&vi, fs::Permissions::from_mode(0o600)).unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(dir.path().join("images/.DS_Store"), [0u8; 10]).unwrap();
        assert_eq!(pack(dir.path()).unwrap(), first);
        // And a real change does change it.
        fs::write(dir.path().join("README.txt"), "notes").unwrap();
        assert_ne!(pack(dir.path()).unwrap(), first);
    }

    #[test]
    fn a_broken_campaign_is_not_packed() {
        let dir = bluezone();
        fs::remove_file(dir.path().join("locales/fr.toml")).unwrap();
        let e = pack(dir.path()).unwrap_err().to_string();
        assert!(e.contains("locales/fr.toml"), "{e}");
    }

    #[test]
    fn a_logo_in_a_hidden_folder_is_caught_before_it_is_published() {
        let dir = bluezone();
        fs::create_dir(dir.path().join(".art")).unwrap();
        fs::copy(dir.path().join("images/logo.svg"), dir.path().join(".art/logo.svg")).unwrap();
        let toml = fs::read_to_string(dir.path().join("campaign.toml")).unwrap();
        fs::write(dir.path().join("campaign.toml"), toml.replace("images/logo.svg", ".art/logo.svg")).unwrap();
        let e = pack(dir.path()).unwrap_err().to_string();
        assert!(e.contains(".art/logo.svg: is not in the bundle"), "{e}");
        assert!(e.contains("names that start with a dot are not packed"), "{e}");
    }

    #[test]
    fn links_and_special_files_in_the_folder() {
        let dir = bluezone();
        // A link to a file is packed as that file.
        std::os::unix::fs::symlink(dir.path().join("images/logo.svg"), dir.path().join("images/link.svg")).unwrap();
        let bundle = pack(dir.path()).unwrap();
        let files = read_archive(&bundle).unwrap();
        assert_eq!(files["images/link.svg"], files["images/logo.svg"]);
        // A link to a folder, and a socket, are refused, each named.
        std::os::unix::fs::symlink(dir.path().join("locales"), dir.path().join("more")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("images/sock")).unwrap();
        let e = pack(dir.path()).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        assert!(e.problems[0].contains("images/sock: is not a regular file"), "{e}");
        assert!(e.problems[1].contains("more: is a symbolic link to a folder"), "{e}");
    }

    #[test]
    fn a_folder_over_the_bundle_limits_is_not_packed() {
        let dir = bluezone();
        fs::write(dir.path().join("poster.pdf"), vec![b'x'; MAX_CAMPAIGN_FILE as usize + 1]).unwrap();
        let e = pack(dir.path()).unwrap_err().to_string();
        assert!(e.contains("poster.pdf: is larger than 262144 bytes"), "{e}");
        fs::remove_file(dir.path().join("poster.pdf")).unwrap();

        let big = vec![b'x'; MAX_CAMPAIGN_FILE as usize];
        for i in 0..MAX_BUNDLE_BYTES / big.len() {
            fs::write(dir.path().join(format!("print-{i:02}.pdf")), &big).unwrap();
        }
        let e = pack(dir.path()).unwrap_err().to_string();
        assert!(e.contains("more than 4194304 bytes"), "{e}");

        let dir = bluezone();
        fs::create_dir(dir.path().join("notes")).unwrap();
        for i in 0..MAX_BUNDLE_ENTRIES {
            fs::write(dir.path().join(format!("notes/{i:03}.txt")), "n").unwrap();
        }
        let e = pack(dir.path()).unwrap_err().to_string();
        assert!(e.contains("more than 256 files"), "{e}");
    }

    #[test]
    fn long_paths_use_the_prefix_field() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let h = header(&long, 1, b'0').unwrap();
        assert_eq!(Header::parse(&h).unwrap().path, long);
        assert!(header(&"f".repeat(101), 1, b'0').is_none());
        assert!(header(&format!("{}/f", "d".repeat(156)), 1, b'0').is_none());
    }

    #[test]
    fn the_bundle_limits_are_enforced_on_load() {
        let e = refusal(&vec![0; MAX_BUNDLE_BYTES + 1]);
        assert!(e.contains("more than the 4194304 a bundle may have"), "{e}");

        let names: Vec<String> = (0..=MAX_BUNDLE_ENTRIES).map(|i| format!("d{i}")).collect();
        let entries: Vec<(&str, u8, &[u8])> = names.iter().map(|n| (n.as_str(), b'5', &b""[..])).collect();
        let e = refusal(&archive(&entries));
        assert!(e.contains("more than 256 entries"), "{e}");

        let big = vec![b'x'; MAX_CAMPAIGN_FILE as usize + 1];
        let e = refusal(&archive(&[("campaign.toml", b'0', TOML), ("images/big.png", b'0', &big)]));
        assert!(e.contains("\"images/big.png\": is larger than 262144 bytes"), "{e}");
    }

    #[test]
    fn links_devices_and_extension_headers_are_refused() {
        for (flag, what) in [
            (b'1', "a hard link"),
            (b'2', "a symbolic link"),
            (b'3', "a character device"),
            (b'4', "a block device"),
            (b'6', "a fifo"),
            (b'x', "a pax extended header"),
            (b'L', "a GNU long-name header"),
        ] {
            let e = refusal(&archive(&[("campaign.toml", b'0', TOML), ("images/logo.svg", flag, b"")]));
            assert!(e.contains(&format!("\"images/logo.svg\": is {what}; a bundle holds regular files")), "{e}");
        }
    }

    #[test]
    fn paths_outside_the_folder_and_twice_given_are_refused() {
        for (path, why) in [
            ("/etc/passwd", "is an absolute path"),
            ("../campaign.toml", "goes outside the campaign folder"),
            ("locales/../../x", "goes outside the campaign folder"),
        ] {
            let e = refusal(&archive(&[(path, b'0', TOML)]));
            assert!(e.contains(&format!("{path:?}: {why}")), "{e}");
        }
        for twice in ["campaign.toml", "./campaign.toml", "campaign.toml/"] {
            let e = refusal(&archive(&[("campaign.toml", b'0', TOML), (twice, b'0', TOML)]));
            assert!(e.contains("appears twice"), "{twice}: {e}");
        }
        let e = refusal(&archive(&[("images", b'5', b""), ("images", b'0', TOML)]));
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn truncated_and_damaged_archives_are_refused() {
        let good = pack(bluezone().path()).unwrap();
        assert!(load(&good, "test.tar").is_ok());
        // Cut inside a header, inside a file, at a block boundary before
        // the end marker, and between its two blocks.
        let first_size = Header::parse(&good[..BLOCK]).unwrap().size as usize;
        for cut in [100, BLOCK + first_size / 2, BLOCK + first_size.next_multiple_of(BLOCK), good.len() - BLOCK] {
            let e = refusal(&good[..cut]);
            assert!(e.contains("is truncated"), "cut at {cut}: {e}");
        }
        let mut flipped = good.clone();
        flipped[10] ^= 0x20;
        assert!(refusal(&flipped).contains("the header at byte 0 has a wrong checksum"));
        assert!(refusal(b"campaign.toml\nname = \"x\"\n").contains("is truncated"));
        assert!(refusal(&[b'x'; 2048]).contains("has no checksum"));
        let mut old = archive(&[("campaign.toml", b'0', TOML)]);
        old[257..265].fill(0);
        let sum: u32 = old[..BLOCK]
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
            .sum();
        old[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(refusal(&old).contains("is not a ustar header"));
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        assert!(refusal(&trailing).contains("has data after its end-of-archive marker"));
        // Zero padding after the marker (tar pads to 10 KiB records) is fine.
        let mut padded = good;
        padded.resize(padded.len().next_multiple_of(10240), 0);
        assert!(load(&padded, "test.tar").is_ok());
    }

    #[test]
    fn a_bundle_is_checked_as_a_folder_is() {
        let dir = bluezone();
        let mut entries = Vec::new();
        let toml = fs::read(dir.path().join("campaign.toml")).unwrap();
        entries.push(("./campaign.toml".to_owned(), toml));
        for tag in ["vi", "en", "zh-Hans", "zh-Hant", "ko", "ja", "ru"] {
            entries.push((
                format!("./locales/{tag}.toml"),
                fs::read(dir.path().join(format!("locales/{tag}.toml"))).unwrap(),
            ));
        }
        entries.push(("./images/logo.svg".to_owned(), fs::read(dir.path().join("images/logo.svg")).unwrap()));
        let list: Vec<(&str, u8, &[u8])> = entries.iter().map(|(p, b)| (p.as_str(), b'0', b.as_slice())).collect();
        // As `tar -C dir .` writes it: `./` names and a folder entry; no fr.
        let mut with_folder = vec![("./", b'5', &b""[..])];
        with_folder.extend(list);
        let e = load(&archive(&with_folder), "https://example.vn/c.tar").unwrap_err();
        assert_eq!(e.problems, ["https://example.vn/c.tar/locales/fr.toml: is not in the bundle"]);
    }

    #[test]
    fn an_archive_made_by_gnu_tar_loads_too() {
        // A province may reach for tar(1) instead of pack: its default
        // format, with `./` names, folder entries and 10 KiB records.
        let (dir, elsewhere) = (bluezone(), tempfile::tempdir().unwrap());
        let out = elsewhere.path().join("gnu.tar");
        let status = std::process::Command::new("tar").arg("-cf").arg(&out).arg("-C").arg(dir.path()).arg(".").status();
        assert!(status.unwrap().success());
        let bundle = fs::read(&out).unwrap();
        assert_eq!(bundle.len() % 10240, 0);
        assert_eq!(load(&bundle, "gnu.tar").unwrap().name, "Bluezone");
    }

    const PAYLOAD: &[u8] = include_bytes!("../../tests/data/bundle/payload.txt");
    const SIGNATURE: &str = include_str!("../../tests/data/bundle/payload.txt.minisig");
    const LEGACY: &str = include_str!("../../tests/data/bundle/payload.txt.legacy.minisig");
    const PUBLIC_KEY: &str = include_str!("../../tests/data/bundle/test.pub");
    const OTHER_KEY: &str = include_str!("../../tests/data/bundle/other.pub");

    fn key(file: &str) -> BundleKey {
        file.lines().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_signature_from_minisign_verifies() {
        verify(PAYLOAD, SIGNATURE, &key(PUBLIC_KEY)).unwrap();
        // The whole minisign.pub works as well as its key line.
        verify(PAYLOAD, SIGNATURE, &PUBLIC_KEY.parse().unwrap()).unwrap();
    }

    #[test]
    fn tampering_another_key_and_a_malformed_signature_each_say_so() {
        let mut tampered = PAYLOAD.to_vec();
        tampered[0] ^= 1;
        let e = verify(&tampered, SIGNATURE, &key(PUBLIC_KEY)).unwrap_err();
        assert!(e.contains("changed after signing"), "{e}");
        let e = verify(PAYLOAD, &SIGNATURE.replace("portico test vector", "portico test vectors"), &key(PUBLIC_KEY))
            .unwrap_err();
        assert!(e.contains("changed after signing"), "{e}");

        let e = verify(PAYLOAD, SIGNATURE, &key(OTHER_KEY)).unwrap_err();
        assert!(e.contains("another key"), "{e}");

        for bad in ["", "untrusted comment: x\nnot base64\n", &SIGNATURE[..SIGNATURE.len() / 2]] {
            let e = verify(PAYLOAD, bad, &key(PUBLIC_KEY)).unwrap_err();
            assert!(e.contains("not a minisign signature"), "{bad:?}: {e}");
        }
        let e = verify(PAYLOAD, LEGACY, &key(PUBLIC_KEY)).unwrap_err();
        assert!(e.contains("legacy signature"), "{e}");
    }

    #[test]
    fn a_public_key_that_is_not_one_is_refused_clearly() {
        for bad in ["", "RWQ", "hello world", "untrusted comment: x\nRWSV2n6a\n", &format!("{PUBLIC_KEY}{PUBLIC_KEY}")]
        {
            let e = bad.parse::<BundleKey>().unwrap_err();
            assert!(e.contains("is not a minisign public key"), "{bad:?}: {e}");
        }
    }
}
