//! `admin.token_file`: the operator's bearer token for the admin listener's
//! control endpoints, read from its file into a type that never prints it.
//!
//! The file is read where the token is needed, not when the config is
//! parsed: by start-up and every reload (so rotating it is a SIGHUP), by
//! `portico check`, and by `portico clients`. The other commands
//! (`firewall print`, `dhcp print`) then work for a user who may not read
//! it.
//!
//! What must stay true: the token is compared in constant time, and
//! neither `Debug` nor an error message ever shows it.

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::Problem;

/// The key every problem with the file is reported under.
const KEY: &str = "admin.token_file";

/// A validated token: 16 to 4096 bytes of printable ASCII without spaces,
/// so it fits an `Authorization` header as it is.
#[derive(Clone)]
pub struct AdminToken {
    secret: Box<[u8]>,
    /// The file's permission bits when it was read.
    mode: u32,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(MASKED)")
    }
}

impl AdminToken {
    /// Shorter tokens are refused: 16 characters of `openssl rand -hex`
    /// are 64 bits, beyond guessing at any rate a listener answers.
    pub const MIN_LEN: usize = 16;
    /// A token file is one line; a larger file is not one.
    pub const MAX_LEN: usize = 4096;

    /// Reads the token from `path`: one line, surrounding whitespace (the
    /// newline `echo` writes) trimmed.
    pub fn read(path: &Path) -> Result<AdminToken, Problem> {
        let bad = |message: String| Problem { key: KEY.into(), line: None, message };
        let shown = path.display();
        let mut file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read {shown}: {e}")))?;
        let meta = file.metadata().map_err(|e| bad(format!("cannot read {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(bad(format!("{shown} is not a file")));
        }
        let mut bytes = Vec::new();
        let limit = Self::MAX_LEN as u64 + 64;
        file.by_ref().take(limit).read_to_end(&mut bytes).map_err(|e| bad(format!("cannot read {shown}: {e}")))?;
        let token = bytes.trim_ascii();
        let make = "(e.g. `openssl rand -hex 32`)";
        if token.is_empty() {
            return Err(bad(format!("{shown} is empty: put one token in it {make}")));
        }
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!("{shown} must hold one token of printable ASCII without spaces {make}")));
        }
        if token.len() < Self::MIN_LEN {
            return Err(bad(format!(
                "the token in {shown} is {} characters; it must be at least {} {make}",
                token.len(),
                Self::MIN_LEN
            )));
        }
        if token.len() > Self::MAX_LEN || bytes.len() as u64 >= limit {
            return Err(bad(format!("{shown} is over {} bytes: it must hold one token {make}", Self::MAX_LEN)));
        }
        Ok(AdminToken { secret: token.into(), mode: meta.permissions().mode() })
    }

    /// A warning when others than the file's owner may read or change it
    /// (`mode & 0o077`). Not a refusal: the service runs as its own user,
    /// and a group an operator shares on purpose must not stop the portal
    /// at start-up or a reload; `portico check` and the log say it.
    pub fn permissions_warning(&self, path: &Path) -> Option<String> {
        let mode = self.mode & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{KEY}: {} is readable or writable by its group or others (mode {mode:04o}): whoever reads it \
                 can revoke and trust devices; `chmod 600` it (owned by the user Portico runs as)",
                path.display()
            )
        })
    }

    /// Whether `offered` is the token. Constant time in the token's
    /// content: every byte is looked at, whatever the first difference;
    /// only the length (at least [`Self::MIN_LEN`], no secret) can tell.
    pub fn matches(&self, offered: &[u8]) -> bool {
        if offered.len() != self.secret.len() {
            return false;
        }
        let difference = self.secret.iter().zip(offered).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        // Kept opaque so the fold is not turned into an early exit.
        std::hint::black_box(difference) == 0
    }

    /// The value of the `Authorization` header that carries it.
    pub fn authorization(&self) -> String {
        // `read` let only printable ASCII in.
        format!("Bearer {}", String::from_utf8_lossy(&self.secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_in(dir: &Path, text: &[u8], mode: u32) -> Result<AdminToken, Problem> {
        let path = dir.join("admin.token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        AdminToken::read(&path)
    }

    #[test]
    fn a_token_is_one_trimmed_line_and_matches_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let token = token_in(dir.path(), b"0123456789abcdef0123\n", 0o600).unwrap();
        assert!(token.matches(b"0123456789abcdef0123"));
        for wrong in [&b"0123456789abcdef0124"[..], b"0123456789abcdef012", b"0123456789abcdef01234", b""] {
            assert!(!token.matches(wrong), "{}", String::from_utf8_lossy(wrong));
        }
        assert_eq!(token.authorization(), "Bearer 0123456789abcdef0123");
        assert_eq!(format!("{token:?}"), "AdminToken(MASKED)");
        assert_eq!(token.permissions_warning(&dir.path().join("admin.token")), None);
    }

    #[test]
    fn an_empty_short_or_spaced_token_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 5] = [
            (b"", "is empty"),
            (b"\n  \n", "is empty"),
            (b"short-token\n", "at least 16"),
            (b"two words in one token file\n", "without spaces"),
            (&[b'x'; 5000], "over 4096 bytes"),
        ];
        for (text, wanted) in cases {
            let problem = token_in(dir.path(), text, 0o600).unwrap_err();
            assert_eq!(problem.key, "admin.token_file");
            assert!(problem.message.contains(wanted), "{wanted}: {problem}");
            assert!(!problem.message.contains("short-token"), "the token is never shown: {problem}");
        }
        let missing = AdminToken::read(&dir.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().starts_with("admin.token_file: cannot read"), "{missing}");
    }

    #[test]
    fn a_token_others_may_read_is_taken_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let token = token_in(dir.path(), b"0123456789abcdef0123", 0o644).unwrap();
        let warning = token.permissions_warning(&dir.path().join("admin.token")).unwrap();
        assert!(warning.starts_with("admin.token_file: ") && warning.contains("mode 0644"), "{warning}");
    }
}
