//! The durable grant store: every grant is on disk before the client is told
//! it may pass, and the grants still live when Portico starts are restored.
//!
//! The state is one append-only journal, `grants.journal` in the state
//! directory, one record per line: `<crc32 of the json, 8 lowercase hex> <json>`,
//! where the json is one of
//! - `{"op":"grant","ip":..,"mac":..,"addrs":[..],"expires_ms":..}`: the
//!   device (its MAC, or for a routed client the address `ip`) may pass
//!   until then; `ip` is where it tapped *Connect*, `addrs` the other
//!   addresses it was using (left out when none; `mac` too);
//! - `{"op":"seen","mac":..,"ip":..}`: a granted device was seen on another
//!   address (a new temporary IPv6 address, say);
//! - `{"op":"revoke","mac":..}` or `{"op":"revoke","ip":..}`: the grant of
//!   that device ends now.
//!
//! Replaying it in order gives the grant table. Journals written before
//! devices were known by MAC have grants without `addrs` and revokes by
//! `ip` only; they load the same (a revoke by `ip` ends the grant tapped
//! from that address, as it did then).
//!
//! Why this shape rather than rewriting a JSON file or embedding a database:
//!
//! - An append never touches bytes already on disk, and [`Journal::append`]
//!   returns only after `fdatasync`, so an acknowledged grant survives
//!   `kill -9` or a power cut. Rewriting one JSON file in place can leave it
//!   half-written; write-temp-then-rename for every grant would cost several
//!   fsyncs per click.
//! - A crash can only tear the last, unacknowledged line. Its missing newline
//!   or wrong CRC gives it away, so replay stops there, the tail is cut off,
//!   and every earlier record is kept. There is no state in which the file
//!   cannot be read.
//! - The journal grows, so it is compacted: the live grants are written to
//!   `grants.journal.tmp`, which is fsynced, renamed over the journal, and
//!   the directory fsynced. A rename is atomic, so a crash leaves either the
//!   old journal or the new one, both complete. Expired grants are purged
//!   from disk here.
//! - [`Store`] puts the journal on its own thread and commits every request
//!   that queued during the previous fsync with a single write and fsync
//!   (group commit), so a burst of hundreds of accepts costs a few fsyncs.
//! - No dependency beyond `serde_json`, `crc32fast` and `memchr`, and an operator can
//!   `cat` the file to see who has been let through.
//!
//! The grant table in memory is one [`GrantTable`], shared with
//! [`crate::sessions`]: the store thread applies each record to it right
//! after the record is durable and before the waiter is answered, and
//! compaction writes it out. One copy of 100,000 grants, not two.
//!
//! What must stay true: a record is applied to the table only after it is
//! durable (only a failed disk makes `sessions` put a grant in memory
//! first, and the table, written out by the next compaction, then makes it
//! durable), and nothing is ever appended after bytes that replay would
//! reject, because replay stops at the first bad line and would hide it.
//!
//! One process owns the state directory; a second Portico on the same
//! directory would interleave appends and is not guarded against here.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::grant::{Device, Grant, GrantMap, MacAddr, from_unix_ms, to_unix_ms};

const JOURNAL: &str = "grants.journal";
const COMPACTING: &str = "grants.journal.tmp";
/// Where replay puts what it dropped when more than a torn last line was bad,
/// so that an operator can look at it instead of it being silently erased.
const REJECTED: &str = "grants.journal.rejected";
/// Below this many records the journal is never worth compacting.
const MIN_RECORDS_TO_COMPACT: usize = 1024;
/// How often expired grants are dropped from the journal's own table, so
/// that deciding whether to compact costs no scan of the table per write.
const PURGE_EXPIRED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The live grants by device, shared by the store and `sessions`. A `std`
/// mutex: every holder does map operations only, never I/O or an await.
#[derive(Clone, Default)]
pub struct GrantTable(Arc<Mutex<GrantMap>>);

impl GrantTable {
    pub fn lock(&self) -> MutexGuard<'_, GrantMap> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The grants live at `now`, sorted by device.
    pub fn live(&self, now: SystemTime) -> Vec<Grant> {
        let mut live: Vec<Grant> = self.lock().values().filter(|g| g.is_live(now)).cloned().collect();
        live.sort_by_key(|g| g.device);
        live
    }
}

/// One change to the grant table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Insert the grant, replacing any grant for the same device.
    Grant(Grant),
    /// The device with this MAC, if granted, also uses this address.
    Seen(MacAddr, IpAddr),
    /// Remove the grant of this device, if any.
    Revoke(Device),
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The io error is behind an `Arc` so that one failed group commit can be
    /// reported to every request in it.
    #[error("cannot {action} {}: {error}", path.display())]
    Io { action: &'static str, path: PathBuf, error: Arc<io::Error> },
    #[error(
        "not writing to {}: an earlier failed write could not be undone; \
         the journal will be rewritten from memory once the disk accepts writes",
        path.display()
    )]
    NeedsRewrite { path: PathBuf },
    #[error("the grant store thread has stopped")]
    Stopped,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |error| StoreError::Io { action, path, error: Arc::new(error) }
}

/// The json half of a journal line, as written.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Line {
    Grant {
        ip: IpAddr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        addrs: Vec<IpAddr>,
        expires_ms: u64,
    },
    Seen {
        mac: String,
        ip: IpAddr,
    },
    Revoke {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
    },
}

/// The json half of a journal line, as read: every field of every kind of
/// line, borrowed from the line. Flat rather than the tagged [`Line`],
/// which serde would first copy into a buffer to find its tag: replaying
/// 100,000 grants at start-up is mostly this.
#[derive(Deserialize)]
struct Fields<'a> {
    op: &'a str,
    #[serde(default)]
    ip: Option<IpAddr>,
    #[serde(default, borrow)]
    mac: Option<&'a str>,
    #[serde(default)]
    addrs: Vec<IpAddr>,
    #[serde(default)]
    expires_ms: Option<u64>,
}

impl Record {
    /// The full journal line, newline included.
    fn encode(&self) -> String {
        let line = match self {
            Record::Grant(grant) => Line::Grant {
                ip: grant.ip(),
                mac: grant.mac().map(|mac| mac.to_string()),
                addrs: grant.other_addresses().to_vec(),
                expires_ms: to_unix_ms(grant.expires),
            },
            Record::Seen(mac, ip) => Line::Seen { mac: mac.to_string(), ip: *ip },
            Record::Revoke(Device::Mac(mac)) => Line::Revoke { ip: None, mac: Some(mac.to_string()) },
            Record::Revoke(Device::Addr(ip)) => Line::Revoke { ip: Some(*ip), mac: None },
        };
        // Addresses, strings and integers always serialise.
        let json = serde_json::to_string(&line).expect("a journal line serialises");
        format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
    }

    /// A line without its newline, or `None` if it is not one we wrote whole.
    fn decode(line: &[u8]) -> Option<Record> {
        let (crc, rest) = line.split_at_checked(8)?;
        let json = rest.strip_prefix(b" ")?;
        let crc = crc.iter().try_fold(0u32, |n, &b| Some(n << 4 | char::from(b).to_digit(16)?))?;
        if crc32fast::hash(json) != crc {
            return None;
        }
        Record::decode_grant(json).or_else(|| Record::decode_json(json))
    }

    /// The grant line exactly as [`Record::encode`] writes it for one
    /// address, read without a JSON parser: start-up replays one per grant.
    /// Anything else (other records, more addresses, other spacing or field
    /// order) is `None` here and goes to the JSON parser, which reads it
    /// the same way.
    fn decode_grant(json: &[u8]) -> Option<Record> {
        let text = |bytes| std::str::from_utf8(bytes).ok();
        let (ip, rest) = until_quote(json.strip_prefix(br#"{"op":"grant","ip":""#)?)?;
        let ip: IpAddr = text(ip)?.parse().ok()?;
        let (device, rest) = match rest.strip_prefix(br#","mac":""#) {
            Some(rest) => {
                let (mac, rest) = until_quote(rest)?;
                (Device::Mac(text(mac)?.parse().ok()?), rest)
            }
            None => (Device::Addr(ip), rest),
        };
        let digits = rest.strip_prefix(br#","expires_ms":"#)?.strip_suffix(b"}")?;
        // JSON's integers: digits, no leading zero.
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        let ms = digits.iter().try_fold(0u64, |n, &b| {
            let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
            n.checked_mul(10)?.checked_add(u64::from(digit))
        })?;
        Some(Record::Grant(Grant::new(device, ip, from_unix_ms(ms))))
    }

    fn decode_json(json: &[u8]) -> Option<Record> {
        let line: Fields = serde_json::from_slice(json).ok()?;
        // A MAC that is there must be one.
        let mac = match line.mac {
            Some(text) => Some(text.parse::<MacAddr>().ok()?),
            None => None,
        };
        Some(match (line.op, line.ip, mac, line.expires_ms) {
            ("grant", Some(ip), None, Some(ms)) => Record::Grant(Grant::new(Device::Addr(ip), ip, from_unix_ms(ms))),
            ("grant", Some(ip), Some(mac), Some(ms)) => {
                let mut grant = Grant::new(Device::Mac(mac), ip, from_unix_ms(ms));
                line.addrs.into_iter().for_each(|a| _ = grant.learn(a));
                Record::Grant(grant)
            }
            ("seen", Some(ip), Some(mac), _) => Record::Seen(mac, ip),
            ("revoke", _, Some(mac), _) => Record::Revoke(Device::Mac(mac)),
            ("revoke", Some(ip), None, _) => Record::Revoke(Device::Addr(ip)),
            _ => return None,
        })
    }

    /// [`Record::apply`] of a record that is not needed afterwards (replay),
    /// without copying its grant.
    fn apply_owned(self, grants: &mut GrantMap) {
        match self {
            Record::Grant(grant) => {
                grants.insert(grant);
            }
            other => other.apply(grants),
        }
    }

    fn apply(&self, grants: &mut GrantMap) {
        match self {
            Record::Grant(grant) => {
                grants.insert(grant.clone());
            }
            Record::Seen(mac, ip) => {
                if let Some(grant) = grants.get_mut(&Device::Mac(*mac)) {
                    grant.learn(*ip);
                }
            }
            Record::Revoke(device @ Device::Mac(_)) => {
                grants.remove(device);
            }
            Record::Revoke(device @ Device::Addr(ip)) => {
                // A journal from before devices were known by MAC keyed every
                // grant by the address it was tapped from, MAC or not.
                if grants.remove(device).is_none() {
                    grants.retain(|g| g.ip() != *ip);
                }
            }
        }
    }
}

/// The bytes up to the next `"`, and those after it.
fn until_quote(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b'"')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Applies every record of `file` to `grants`, in order, up to the first
/// line that is not one we wrote whole. Returns the number of records, the
/// length of the file they fill, and the bytes from the first bad line on
/// (empty when every line was good).
fn replay(mut file: &File, grants: &mut GrantMap) -> io::Result<(usize, u64, Vec<u8>)> {
    const BLOCK: usize = 256 * 1024;
    let mut buf = vec![0; BLOCK];
    // `buf[..filled]` is read and not yet decoded: the start of a line.
    let (mut filled, mut records, mut good) = (0, 0, 0u64);
    loop {
        if filled == buf.len() {
            // A line longer than the block (no line Portico writes is).
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // What is left has no newline: a torn last append, or nothing.
            buf.truncate(filled);
            return Ok((records, good, buf));
        }
        filled += n;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..filled]) {
            let Some(record) = Record::decode(&buf[start..end]) else {
                let mut dropped = buf[start..filled].to_vec();
                file.read_to_end(&mut dropped)?;
                return Ok((records, good, dropped));
            };
            record.apply_owned(grants);
            records += 1;
            good += (end + 1 - start) as u64;
            start = end + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
}

/// The open journal. Synchronous: every call that writes returns only once
/// the data is on disk, and has applied what it wrote to the table.
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Length of the file up to the end of the last durable record.
    len: u64,
    /// Records in the file, to decide when compaction pays.
    records: usize,
    grants: GrantTable,
    /// Set when the file may end in bytes replay would reject, or the handle
    /// may point at a replaced file; only a compaction clears it.
    needs_rewrite: bool,
    /// When expired grants were last dropped from `grants`.
    purged_at: Option<SystemTime>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, cuts off a torn tail,
    /// and returns the grants live at `now`, sorted by device.
    pub fn open(dir: &Path, now: SystemTime) -> Result<(Journal, Vec<Grant>), StoreError> {
        let journal = Journal::load(dir, now)?;
        let live = journal.grants.live(now);
        Ok((journal, live))
    }

    /// Opens the journal like [`Journal::open`], leaving the live grants in
    /// its [`Journal::table`] only.
    pub fn load(dir: &Path, now: SystemTime) -> Result<Journal, StoreError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error("create directory", dir))?;
        let path = dir.join(JOURNAL);
        let file = open_append(&path)?;
        // Make the journal's directory entry durable too, or the first fsynced
        // grant could vanish with a file that was never linked.
        sync_dir(dir)?;
        // Read in blocks and decode each line where it lies, not the whole
        // file at once: a journal of 100,000 grants is megabytes that the
        // allocator would keep after start-up. Sized for about one grant per
        // line of a compacted journal, so the table is not rehashed as it
        // fills.
        let size = file.metadata().map_err(io_error("read", &path))?.len();
        let mut grants = GrantMap::with_capacity((size / 96) as usize);
        let (records, good, dropped) = replay(&file, &mut grants).map_err(io_error("read", &path))?;
        if !dropped.is_empty() {
            if dropped.contains(&b'\n') {
                // More than the last line is unreadable: that is not a torn
                // append but damage or a hand edit. Keep it for the operator.
                let rejected = dir.join(REJECTED);
                fs::write(&rejected, &dropped).map_err(io_error("write", &rejected))?;
                tracing::error!(
                    journal = %path.display(),
                    offset = good,
                    rejected = %rejected.display(),
                    "grant journal unreadable from this offset; later records dropped and saved aside"
                );
            } else {
                tracing::warn!(
                    journal = %path.display(),
                    offset = good,
                    "grant journal ends in a torn record (crash during a write); dropping it"
                );
            }
            file.set_len(good).and_then(|()| file.sync_all()).map_err(io_error("truncate", &path))?;
        }

        grants.retain(|grant| grant.is_live(now));
        // A journal long past its last compaction has many dead lines.
        if grants.capacity() > 2 * grants.len() + 1024 {
            grants.shrink_to_fit();
        }
        Ok(Journal {
            dir: dir.to_owned(),
            path,
            file,
            len: good,
            records,
            grants: GrantTable(Arc::new(Mutex::new(grants))),
            needs_rewrite: false,
            purged_at: Some(now),
        })
    }

    /// The table this journal applies its records to.
    pub fn table(&self) -> GrantTable {
        self.grants.clone()
    }

    /// Appends `records` with one write and one fsync.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if self.needs_rewrite {
            return Err(StoreError::NeedsRewrite { path: self.path.clone() });
        }
        if records.is_empty() {
            return Ok(());
        }
        let text: String = records.iter().map(Record::encode).collect();
        let written = (&self.file).write_all(text.as_bytes()).and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            // A partial line left here would stop every later replay at it,
            // hiding the records appended after it; cut it off.
            let undone = self.file.set_len(self.len).and_then(|()| self.file.sync_data());
            self.needs_rewrite = undone.is_err();
            return Err(io_error("write", &self.path)(error));
        }
        self.len += text.len() as u64;
        self.records += records.len();
        let mut grants = self.grants.lock();
        for record in records {
            record.apply(&mut grants);
        }
        Ok(())
    }

    /// Whether the journal holds enough dead records that rewriting it pays:
    /// more than `max(1024, 4 × grants live)`, or an earlier failure left it
    /// needing a rewrite. Called after every write, so it must not cost a
    /// scan of the table: grants that expired are dropped from the count at
    /// most once every `PURGE_EXPIRED_EVERY`, which delays a compaction
    /// by at most that long.
    pub fn should_compact(&mut self, now: SystemTime) -> bool {
        if self.needs_rewrite {
            return true;
        }
        if self.records <= MIN_RECORDS_TO_COMPACT {
            return false;
        }
        let mut grants = self.grants.lock();
        if self.purged_at.is_none_or(|at| now.duration_since(at).unwrap_or_default() >= PURGE_EXPIRED_EVERY) {
            grants.retain(|grant| grant.is_live(now));
            self.purged_at = Some(now);
        }
        self.records > 4 * grants.len()
    }

    /// Rewrites the journal as just the grants live at `now`, atomically.
    pub fn compact(&mut self, now: SystemTime) -> Result<(), StoreError> {
        let (text, count) = {
            let mut grants = self.grants.lock();
            grants.retain(|grant| grant.is_live(now));
            let text: String = grants.values().map(|grant| Record::Grant(grant.clone()).encode()).collect();
            (text, grants.len())
        };
        let tmp = self.dir.join(COMPACTING);
        if let Err(error) = write_synced(&tmp, text.as_bytes()) {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        fs::rename(&tmp, &self.path).map_err(io_error("rename into place", &self.path))?;
        // The handle now points at the replaced file: until it is reopened on
        // the new one, appending would write where no replay will look.
        self.needs_rewrite = true;
        sync_dir(&self.dir)?;
        self.file = open_append(&self.path)?;
        self.len = text.len() as u64;
        self.records = count;
        self.needs_rewrite = false;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(path).map_err(io_error("open", path))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("create", path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_error("write", path))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("sync directory", dir))
}

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Request {
    Commit(Vec<Record>, Reply),
    Compact(Reply),
}

/// The async front of the journal: a cheap, clonable handle to the thread
/// that owns it. The thread stops once every handle is dropped and the
/// requests already queued are done.
#[derive(Clone)]
pub struct Store {
    // `mpsc::Sender` is already a shared handle, so cloning it is the whole
    // cost of cloning a `Store`. The queue is unbounded, but each caller waits
    // for its answer, so it never holds more than one request per caller.
    requests: mpsc::Sender<Request>,
}

impl Store {
    /// Starts the thread "portico-store" that owns `journal`.
    pub fn spawn(journal: Journal) -> Store {
        let (requests, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("portico-store".into())
            .spawn(move || {
                let batches = run(journal, queue);
                tracing::debug!(batches, "grant store stopped");
            })
            // As `std::thread::spawn` does: only fails when the OS is out of
            // threads or memory, and then Portico cannot run anyway.
            .expect("cannot start the grant store thread");
        Store { requests }
    }

    /// Makes `records` durable. When this returns `Ok`, they are on disk:
    /// there is no separate flush. If the future is dropped before it
    /// finishes, the records may or may not have been written.
    pub async fn commit(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.ask(|reply| Request::Commit(records, reply)).await
    }

    /// Rewrites the journal as the grants live now. The store also does this
    /// on its own when the journal has grown enough; this is for shutdown and
    /// tests.
    pub async fn compact(&self) -> Result<(), StoreError> {
        self.ask(Request::Compact).await
    }

    async fn ask(&self, request: impl FnOnce(Reply) -> Request) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(request(reply)).map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

/// The store thread: serves requests until every sender is gone, and returns
/// how many batches it wrote.
fn run(mut journal: Journal, queue: mpsc::Receiver<Request>) -> u64 {
    let mut batches = 0;
    let mut records = Vec::new();
    let mut waiters = Vec::new();
    while let Ok(first) = queue.recv() {
        // Everything that queued while the last fsync ran goes in one batch.
        for request in std::iter::once(first).chain(queue.try_iter()) {
            match request {
                Request::Commit(mut more, reply) => {
                    records.append(&mut more);
                    waiters.push(reply);
                }
                Request::Compact(reply) => {
                    batches += write_batch(&mut journal, &mut records, &mut waiters);
                    let _ = reply.send(journal.compact(SystemTime::now()));
                }
            }
        }
        batches += write_batch(&mut journal, &mut records, &mut waiters);
        let now = SystemTime::now();
        if journal.should_compact(now)
            && let Err(error) = journal.compact(now)
        {
            tracing::warn!(%error, "grant journal compaction failed; will retry");
        }
    }
    batches
}

fn write_batch(journal: &mut Journal, records: &mut Vec<Record>, waiters: &mut Vec<Reply>) -> u64 {
    if waiters.is_empty() {
        return 0;
    }
    let result = journal.append(records);
    records.clear();
    for waiter in waiters.drain(..) {
        // A waiter that gave up no longer needs the answer.
        let _ = waiter.send(result.clone());
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW_MS: u64 = 1_790_000_000_000;

    fn now() -> SystemTime {
        from_unix_ms(NOW_MS)
    }

    fn expiry(minutes: i64) -> SystemTime {
        from_unix_ms(NOW_MS.checked_add_signed(minutes * 60_000).unwrap())
    }

    /// A routed client's grant: known by its address.
    fn grant(ip: &str, minutes: i64) -> Grant {
        let ip: IpAddr = ip.parse().unwrap();
        Grant::new(Device::Addr(ip), ip, expiry(minutes))
    }

    /// A phone's grant: known by its MAC, tapped from `ip`.
    fn phone(mac: &str, ip: &str, minutes: i64) -> Grant {
        Grant::new(Device::Mac(mac.parse().unwrap()), ip.parse().unwrap(), expiry(minutes))
    }

    fn reopen(dir: &Path) -> Vec<Grant> {
        Journal::open(dir, now()).unwrap().1
    }

    #[test]
    fn line_format_is_crc_then_json() {
        let line = Record::Grant(grant("10.0.0.7", 0)).encode();
        let json = r#"{"op":"grant","ip":"10.0.0.7","expires_ms":1790000000000}"#;
        assert_eq!(line, format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())));
        let revoke = Record::Revoke(Device::Addr("10.0.0.7".parse().unwrap())).encode();
        assert!(revoke.ends_with(" {\"op\":\"revoke\",\"ip\":\"10.0.0.7\"}\n"));
        let mut both = phone("02:00:5e:10:00:0a", "10.0.0.7", 0);
        both.learn("fd00::7".parse().unwrap());
        let json = r#"{"op":"grant","ip":"10.0.0.7","mac":"02:00:5e:10:00:0a","addrs":["fd00::7"],"expires_ms":1790000000000}"#;
        assert_eq!(Record::Grant(both.clone()).encode(), format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())));
        assert_eq!(
            Record::decode(Record::Grant(both.clone()).encode().trim_end().as_bytes()),
            Some(Record::Grant(both))
        );
        let seen = Record::Seen("02:00:5e:10:00:0a".parse().unwrap(), "fd00::8".parse().unwrap());
        assert_eq!(Record::decode(seen.encode().trim_end().as_bytes()), Some(seen));
    }

    /// The fast reader of grant lines and the JSON parser agree on every
    /// line the fast one takes, damaged ones included.
    #[test]
    fn grant_lines_read_the_same_with_and_without_the_json_parser() {
        let mut phone = phone("02:00:5e:10:00:0a", "10.0.0.7", 5);
        let lines = [
            Record::Grant(grant("10.0.0.7", 5)).encode(),
            Record::Grant(phone.clone()).encode(),
            Record::Grant(grant("fd00::7", 5)).encode(),
            {
                phone.learn("fd00::7".parse().unwrap());
                Record::Grant(phone).encode()
            },
            Record::Revoke(Device::Addr("10.0.0.7".parse().unwrap())).encode(),
        ];
        let mut taken = 0;
        for line in &lines {
            let json = line.trim_end().split_once(' ').unwrap().1.as_bytes();
            if let Some(fast) = Record::decode_grant(json) {
                assert_eq!(Some(fast), Record::decode_json(json), "{line}");
                taken += 1;
            }
            assert!(Record::decode(line.trim_end().as_bytes()).is_some(), "{line}");
            for at in 0..json.len() {
                for byte in [b'0', b'"', b'}', b'x', b' '] {
                    let mut bad = json.to_vec();
                    bad[at] = byte;
                    if let Some(fast) = Record::decode_grant(&bad) {
                        assert_eq!(Some(fast), Record::decode_json(&bad), "{}", String::from_utf8_lossy(&bad));
                    }
                }
            }
        }
        assert_eq!(taken, 3, "grants with one address take the fast way");
    }

    #[test]
    fn replay_applies_grants_and_revokes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, loaded) = Journal::open(dir.path(), now()).unwrap();
        assert!(loaded.is_empty());
        let (a, b, c) = (grant("10.0.0.1", 10), grant("10.0.0.2", 10), grant("fd00::3", 10));
        let b_later = grant("10.0.0.2", 60);
        journal.append(&[Record::Grant(c.clone()), Record::Grant(a.clone())]).unwrap();
        journal.append(&[Record::Grant(b.clone())]).unwrap();
        journal.append(&[Record::Revoke(a.device)]).unwrap();
        journal.append(&[Record::Grant(b_later.clone())]).unwrap();
        drop(journal);
        assert_eq!(reopen(dir.path()), vec![b_later, c]);
    }

    #[test]
    fn expired_grants_are_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        let live = grant("10.0.0.1", 1);
        let records = [grant("10.0.0.2", -1), grant("10.0.0.3", 0), live.clone()];
        journal.append(&records.map(Record::Grant)).unwrap();
        drop(journal);
        assert_eq!(reopen(dir.path()), vec![live]);
    }

    #[test]
    fn compaction_keeps_live_grants_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        let (live, expired) = (grant("10.0.0.1", 30), grant("10.0.0.2", -30));
        let gone = grant("10.0.0.3", 30);
        let records = [
            Record::Grant(live.clone()),
            Record::Grant(expired),
            Record::Grant(gone.clone()),
            Record::Revoke(gone.device),
        ];
        journal.append(&records).unwrap();
        journal.compact(now()).unwrap();
        let text = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(text, Record::Grant(live.clone()).encode());
        assert!(!dir.path().join(COMPACTING).exists());

        // Appends after compaction go to the new file.
        let added = grant("10.0.0.4", 30);
        journal.append(&[Record::Grant(added.clone())]).unwrap();
        drop(journal);
        assert_eq!(reopen(dir.path()), vec![live, added]);
    }

    #[test]
    fn garbage_in_the_middle_stops_replay_and_is_saved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let first = grant("10.0.0.1", 30);
        let after = Record::Grant(grant("10.0.0.2", 30)).encode();
        let text = format!("{}not a record\n{after}", Record::Grant(first.clone()).encode());
        fs::write(dir.path().join(JOURNAL), &text).unwrap();

        assert_eq!(reopen(dir.path()), vec![first.clone()]);
        let kept = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(kept, Record::Grant(first).encode());
        let rejected = fs::read_to_string(dir.path().join(REJECTED)).unwrap();
        assert_eq!(rejected, format!("not a record\n{after}"));
    }

    #[test]
    fn lines_across_read_blocks_and_longer_than_one_load_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Some megabytes of grants, so lines straddle the read blocks, and
        // one line longer than a block (a routed client's grant can only be
        // that long in a hand-made journal, but it must still read).
        let mut text = String::new();
        let mut expected = Vec::new();
        for i in 0..30_000u32 {
            let g =
                phone(&format!("02:00:00:{:02x}:{:02x}:{:02x}", i >> 16, (i >> 8) & 0xff, i & 0xff), "10.0.0.1", 30);
            text.push_str(&Record::Grant(g.clone()).encode());
            expected.push(g);
        }
        let padding = " ".repeat(300 * 1024);
        let json = format!(r#"{{"op":"grant","ip":"10.9.9.9",{padding}"expires_ms":{}}}"#, NOW_MS + 60_000);
        text.push_str(&format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())));
        expected.push(grant("10.9.9.9", 1));
        let torn = Record::Grant(grant("10.9.9.10", 30)).encode();
        text.push_str(&torn[..torn.len() - 1]);
        fs::write(dir.path().join(JOURNAL), &text).unwrap();

        let mut loaded = reopen(dir.path());
        loaded.sort_by_key(|g| g.device);
        expected.sort_by_key(|g| g.device);
        assert_eq!(loaded.len(), expected.len());
        assert!(loaded == expected, "every grant read back as written");
        let kept = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert_eq!(kept as usize, text.len() - (torn.len() - 1), "only the torn tail is cut off");
    }

    #[test]
    fn compaction_is_due_once_dead_records_dominate() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        let churn: Vec<Record> = (0..MIN_RECORDS_TO_COMPACT as u32)
            .map(|i| Record::Grant(grant(&IpAddr::from(i.to_be_bytes()).to_string(), 5)))
            .collect();
        journal.append(&churn).unwrap();
        assert!(!journal.should_compact(now()));
        journal.append(&[Record::Revoke(Device::Addr([0; 4].into()))]).unwrap();
        // 1025 records, 1023 live grants: not yet.
        assert!(!journal.should_compact(now()));
        // Ten minutes later every one has expired.
        assert!(journal.should_compact(now() + Duration::from_secs(600)));
        journal.compact(now() + Duration::from_secs(600)).unwrap();
        assert!(!journal.should_compact(now() + Duration::from_secs(600)));
    }

    #[test]
    fn one_fsync_for_everything_already_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), now()).unwrap();
        let (requests, queue) = mpsc::channel();
        let answers: Vec<_> = (1..=50)
            .map(|i| {
                let (reply, answer) = oneshot::channel();
                let record = Record::Grant(grant(&format!("10.0.1.{i}"), 30));
                requests.send(Request::Commit(vec![record], reply)).unwrap();
                answer
            })
            .collect();
        drop(requests);
        assert_eq!(run(journal, queue), 1);
        for mut answer in answers {
            answer.try_recv().unwrap().unwrap();
        }
        assert_eq!(reopen(dir.path()).len(), 50);
    }

    #[test]
    fn a_phone_is_one_grant_on_all_its_addresses_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        let mac: MacAddr = "02:00:00:00:0a:01".parse().unwrap();
        let tapped = phone("02:00:00:00:0a:01", "10.0.1.10", 30);
        let (v6, temporary): (IpAddr, IpAddr) = ("fd70::a".parse().unwrap(), "fd70::5eed".parse().unwrap());
        journal.append(&[Record::Grant(tapped.clone()), Record::Seen(mac, v6)]).unwrap();
        journal.append(&[Record::Seen(mac, temporary), Record::Seen(mac, v6)]).unwrap();
        drop(journal);
        let loaded = reopen(dir.path());
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].device, Device::Mac(mac));
        assert_eq!(loaded[0].addresses().collect::<Vec<_>>(), ["10.0.1.10".parse().unwrap(), v6, temporary]);

        // Compaction keeps every address; a revoke by MAC ends it.
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        journal.compact(now()).unwrap();
        drop(journal);
        assert_eq!(reopen(dir.path())[0].addresses().count(), 3);
        let (mut journal, _) = Journal::open(dir.path(), now()).unwrap();
        journal.append(&[Record::Revoke(Device::Mac(mac))]).unwrap();
        drop(journal);
        assert!(reopen(dir.path()).is_empty());
    }

    /// Regression guard for issue 8: a journal written before devices were
    /// known by MAC (grants keyed by address, revokes by address) still
    /// loads, to the same grants it meant then.
    #[test]
    fn a_journal_from_before_devices_had_macs_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let line = |json: &str| format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        let old = [
            r#"{"op":"grant","ip":"10.0.1.10","mac":"02:00:00:00:0a:01","expires_ms":1790000600000}"#,
            r#"{"op":"grant","ip":"10.0.1.11","mac":"02:00:00:00:0b:01","expires_ms":1790000600000}"#,
            r#"{"op":"grant","ip":"192.0.2.7","expires_ms":1790000600000}"#,
            r#"{"op":"revoke","ip":"10.0.1.11"}"#,
        ];
        fs::write(dir.path().join(JOURNAL), old.map(line).concat()).unwrap();
        let loaded = reopen(dir.path());
        assert_eq!(loaded, vec![phone("02:00:00:00:0a:01", "10.0.1.10", 10), grant("192.0.2.7", 10)]);
        assert!(!dir.path().join(REJECTED).exists(), "nothing was unreadable");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commits_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), SystemTime::now()).unwrap();
        let store = Store::spawn(journal);
        let expires = SystemTime::now() + Duration::from_secs(3600);
        let tasks: Vec<_> = (1..=100u8)
            .map(|i| {
                let store = store.clone();
                let ip = IpAddr::from([10, 0, 2, i]);
                tokio::spawn(async move {
                    let record = Record::Grant(Grant::new(Device::Addr(ip), ip, expires));
                    store.commit(vec![record]).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        store.compact().await.unwrap();
        let (_, loaded) = Journal::open(dir.path(), SystemTime::now()).unwrap();
        assert_eq!(loaded.len(), 100);
        drop(store);
    }
}
