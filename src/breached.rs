//! The Pwned Passwords check of new passwords (checklist S4.4), two ways:
//!
//! - [`PwnedFile`]: HIBP's "ordered by hash" SHA-1 file (`HASH40:COUNT` lines, sorted, CRLF or
//!   LF), searched in place by binary search over byte offsets, so a 30+ GB file is never read
//!   whole; nothing leaves the machine.
//! - [`RangeApi`]: the k-anonymity range API. Only the first 5 hex characters of the SHA-1
//!   leave the machine; the answer lists every suffix under that prefix (padded with fake
//!   entries of count 0) and the match is made here.
//!
//! Both hash the NFKC-normalised password ([`Password::expose`]) with SHA-1, as HIBP does. The
//! password and its full hash are never logged, sent or put into an error. When a lookup
//! fails, the domain accepts the password and logs a warning (fail open, see
//! `doorman_core::breached`); a file that cannot be read at start-up stops the start.

use crate::settings::BreachedSettings;
use anyhow::Context as _;
use async_trait::async_trait;
use doorman_core::Password;
use doorman_core::breached::{BreachCheckError, BreachedPasswords};
use sha1::{Digest as _, Sha1};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long the range API may take before the check is given up (and the password accepted).
pub const API_TIMEOUT: Duration = Duration::from_secs(3);
/// A range answer is about 40 kB, padded; anything much larger is not one.
const MAX_RANGE_BODY: usize = 1024 * 1024;
/// The longest line either format has (`40 hex : count CRLF` is about 55 bytes).
const MAX_LINE: u64 = 128;

/// The configured check, or `None` when it is off. Opens the file, to fail at start-up
/// when it cannot be read or is not the SHA-1 one.
pub fn from_settings(settings: &BreachedSettings) -> anyhow::Result<Option<Arc<dyn BreachedPasswords>>> {
    Ok(match settings {
        BreachedSettings::Off => None,
        BreachedSettings::File(path) => Some(Arc::new(PwnedFile::open(path)?)),
        BreachedSettings::Api(base) => Some(Arc::new(RangeApi::new(base, API_TIMEOUT)?)),
    })
}

/// The SHA-1 of the normalised password in upper-case hex, as HIBP lists it.
fn sha1_hex(password: &Password) -> [u8; 40] {
    let digest = Sha1::digest(password.expose().as_bytes());
    let mut hex = [0u8; 40];
    for (i, byte) in digest.iter().enumerate() {
        hex[2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = HEX_DIGITS[usize::from(byte & 0x0f)];
    }
    hex
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// HIBP's "ordered by hash" SHA-1 file, opened afresh for each lookup (so a newer download
/// can be moved into place while doorman runs).
#[derive(Debug)]
pub struct PwnedFile {
    path: PathBuf,
}

impl PwnedFile {
    /// Checks that the file can be read and starts with a SHA-1 line, so that a wrong path or
    /// the NTLM file fails at start-up rather than at every reset.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("pwned_passwords_file: opening {}", path.display()))?;
        let mut first = Vec::new();
        io::BufReader::new(file)
            .take(MAX_LINE)
            .read_until(b'\n', &mut first)
            .with_context(|| format!("pwned_passwords_file: reading {}", path.display()))?;
        if parse_line(&first).is_none() {
            anyhow::bail!(
                "pwned_passwords_file: {} is not the SHA-1 \"ordered by hash\" file of Pwned Passwords (lines HASH:COUNT with 40 hex digits)",
                path.display()
            );
        }
        Ok(Self { path: path.to_owned() })
    }
}

#[async_trait]
impl BreachedPasswords for PwnedFile {
    async fn times_seen(&self, password: &Password) -> Result<Option<u64>, BreachCheckError> {
        let hash = sha1_hex(password);
        let path = self.path.clone();
        let lookup = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            let len = file.metadata()?.len();
            find_count(&mut io::BufReader::with_capacity(512, file), len, &hash)
        });
        match lookup.await {
            Ok(result) => result.map_err(|e| BreachCheckError::new(format!("reading {}: {e}", self.path.display()))),
            Err(_) => Err(BreachCheckError::new("the file lookup task failed")),
        }
    }
}

/// The count of `hash` (40 upper-case hex digits) in a file of `len` bytes of `HASH:COUNT`
/// lines sorted by hash: a binary search over byte offsets that reads a line or two per step.
pub fn find_count<R: BufRead + Seek>(reader: &mut R, len: u64, hash: &[u8; 40]) -> io::Result<Option<u64>> {
    // Every line starting before `lo` holds a smaller hash, every line starting at or after
    // `hi` a larger one; `lo` is always the start of a line.
    let (mut lo, mut hi) = (0u64, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = if mid == lo { lo } else { next_line_start(reader, mid, len)? };
        if start >= hi {
            // No line starts in [mid, hi): what is left starts in [lo, mid).
            hi = mid;
            continue;
        }
        let (line_hash, count, end) = read_line_at(reader, start, len)?;
        match line_hash.cmp(hash) {
            std::cmp::Ordering::Equal => return Ok(Some(count)),
            std::cmp::Ordering::Less => lo = end,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    Ok(None)
}

/// The first line start at or after `at` (which is > 0): just past the first '\n' at or after
/// `at - 1`, or `len` when there is none.
fn next_line_start<R: BufRead + Seek>(reader: &mut R, at: u64, len: u64) -> io::Result<u64> {
    reader.seek(SeekFrom::Start(at - 1))?;
    let mut skipped = Vec::with_capacity(MAX_LINE as usize);
    let read = reader.by_ref().take(MAX_LINE + 1).read_until(b'\n', &mut skipped)? as u64;
    if !skipped.ends_with(b"\n") && at - 1 + read < len {
        return Err(malformed(at));
    }
    Ok(at - 1 + read)
}

/// The hash and count of the line at `start`, and where the next line starts.
fn read_line_at<R: BufRead + Seek>(reader: &mut R, start: u64, len: u64) -> io::Result<([u8; 40], u64, u64)> {
    reader.seek(SeekFrom::Start(start))?;
    let mut line = Vec::with_capacity(MAX_LINE as usize);
    let read = reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line)? as u64;
    let end = start + read;
    if !line.ends_with(b"\n") && end < len {
        return Err(malformed(start));
    }
    let (hash, count) = parse_line(&line).ok_or_else(|| malformed(start))?;
    Ok((hash, count, end))
}

/// `HASH:COUNT` with 40 hex digits (either case) and a decimal count, with or without its
/// line ending; the hash comes back in upper case.
fn parse_line(line: &[u8]) -> Option<([u8; 40], u64)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|&b| b == b':')?;
    let (hash, count) = (&line[..colon], &line[colon + 1..]);
    let hash: [u8; 40] = hash.try_into().ok()?;
    if !hash.iter().all(u8::is_ascii_hexdigit) || count.is_empty() || !count.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let count = std::str::from_utf8(count).ok()?.parse().ok()?;
    Some((hash.map(|b| b.to_ascii_uppercase()), count))
}

fn malformed(offset: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the line at byte {offset} is not HASH:COUNT; is the file sorted by hash?"))
}

/// The k-anonymity range API (`GET {base}/range/{5 hex}` with `Add-Padding: true`).
#[derive(Debug)]
pub struct RangeApi {
    client: reqwest::Client,
    /// The base URL without its trailing '/'.
    base: String,
}

impl RangeApi {
    pub fn new(base: &url::Url, timeout: Duration) -> anyhow::Result<Self> {
        // No redirects: the API does not redirect, and a misconfigured URL should show in the
        // log rather than be followed.
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("doorman/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the Pwned Passwords HTTP client")?;
        Ok(Self { client, base: base.as_str().trim_end_matches('/').to_owned() })
    }

    /// The base URL as logs may show it: scheme and host only.
    fn host(&self) -> String {
        url::Url::parse(&self.base)
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()))
            .unwrap_or_else(|_| "the range API".into())
    }
}

#[async_trait]
impl BreachedPasswords for RangeApi {
    async fn times_seen(&self, password: &Password) -> Result<Option<u64>, BreachCheckError> {
        let hash = sha1_hex(password);
        let (prefix, suffix) = hash.split_at(5);
        let prefix = std::str::from_utf8(prefix).map_err(|_| BreachCheckError::new("hex is ASCII"))?;
        let failed = |what: String| BreachCheckError::new(format!("{}: {what}", self.host()));
        let mut response = self
            .client
            .get(format!("{}/range/{prefix}", self.base))
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(|e| failed(error_chain(e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(failed(format!("answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(error_chain(e)))? {
            if body.len() + chunk.len() > MAX_RANGE_BODY {
                return Err(failed(format!("the answer is larger than {MAX_RANGE_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        count_in_range(&body, suffix).map_err(failed)
    }
}

/// The count of `suffix` (35 upper-case hex digits) in a range answer (`SUFFIX:COUNT` lines);
/// `None` when absent or listed with count 0, which is padding.
pub fn count_in_range(body: &[u8], suffix: &[u8]) -> Result<Option<u64>, String> {
    let mut found = None;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let parsed = line.iter().position(|&b| b == b':').and_then(|colon| {
            let (hash, count) = (&line[..colon], &line[colon + 1..]);
            let ok = hash.len() == 35 && hash.iter().all(u8::is_ascii_hexdigit) && count.iter().all(u8::is_ascii_digit);
            let count: u64 = std::str::from_utf8(count).ok().filter(|_| ok)?.parse().ok()?;
            Some((hash, count))
        });
        // Every line must parse, so that an error page answered with 200 is not read as
        // "not breached" without a word in the log.
        let Some((hash, count)) = parsed else { return Err("the answer is not a list of SUFFIX:COUNT lines".into()) };
        if hash.eq_ignore_ascii_case(suffix) && count > 0 {
            found = Some(count);
        }
    }
    Ok(found)
}

/// reqwest's error and its causes, without the URL (which carries the prefix).
fn error_chain(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let e = e.without_url();
    let mut text = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::io::Cursor;

    fn hash_of(text: &str) -> [u8; 40] {
        sha1_hex(&Password::new(text).unwrap())
    }

    /// A sorted file of `n` entries with the given line ending; entry i has count i + 1.
    fn sorted_file(n: usize, eol: &str) -> (Vec<[u8; 40]>, Vec<u8>) {
        let mut hashes: Vec<[u8; 40]> = (0..n).map(|i| hash_of(&format!("entry {i}"))).collect();
        hashes.sort();
        let mut file = Vec::new();
        for (i, h) in hashes.iter().enumerate() {
            file.extend_from_slice(h);
            file.extend_from_slice(format!(":{}{eol}", i + 1).as_bytes());
        }
        (hashes, file)
    }

    fn lookup(file: &[u8], hash: &[u8; 40]) -> io::Result<Option<u64>> {
        find_count(&mut Cursor::new(file), file.len() as u64, hash)
    }

    #[test]
    fn sha1_is_upper_case_hex_of_the_normalised_password() {
        // The test vector HIBP documents: SHA-1("password").
        assert_eq!(&hash_of("password"), b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
        // NFKC: the ligature is hashed as "fi".
        assert_eq!(hash_of("\u{FB01}"), hash_of("fi"));
    }

    #[test]
    fn s4_4_binary_search_finds_the_first_the_last_and_every_line_with_crlf_and_lf() {
        for eol in ["\r\n", "\n"] {
            let (hashes, file) = sorted_file(300, eol);
            assert_eq!(lookup(&file, &hashes[0]).unwrap(), Some(1), "first line ({eol:?})");
            assert_eq!(lookup(&file, &hashes[299]).unwrap(), Some(300), "last line ({eol:?})");
            for (i, h) in hashes.iter().enumerate() {
                assert_eq!(lookup(&file, h).unwrap(), Some(i as u64 + 1), "line {i} ({eol:?})");
            }
            // Absent: before the first, after the last, and between neighbours.
            assert_eq!(lookup(&file, &[b'0'; 40]).unwrap(), None);
            assert_eq!(lookup(&file, &[b'F'; 40]).unwrap(), None);
            for i in 0..1000 {
                let h = hash_of(&format!("not an entry {i}"));
                assert_eq!(lookup(&file, &h).unwrap(), None);
            }
        }
    }

    #[test]
    fn s4_4_binary_search_handles_tiny_files_no_final_newline_and_lower_case() {
        let target = hash_of("password");
        let one = format!("{}:9545824", std::str::from_utf8(&target).unwrap());
        assert_eq!(lookup(one.as_bytes(), &target).unwrap(), Some(9545824), "one line, no newline");
        assert_eq!(lookup(format!("{one}\r\n").as_bytes(), &target).unwrap(), Some(9545824));
        assert_eq!(lookup(one.to_lowercase().as_bytes(), &target).unwrap(), Some(9545824), "lower-case hex");
        assert_eq!(lookup(b"", &target).unwrap(), None, "empty file");
        let (hashes, mut file) = sorted_file(7, "\r\n");
        file.truncate(file.len() - 2);
        assert_eq!(lookup(&file, &hashes[6]).unwrap(), Some(7), "last line without its CRLF");
    }

    #[test]
    fn a_file_that_is_not_hash_count_lines_is_an_error_not_an_answer() {
        let garbage = "x".repeat(10_000);
        assert!(lookup(garbage.as_bytes(), &hash_of("password")).is_err());
        let ntlm = "8846F7EAEE8FB117AD06BDD830B7586C:2\n".repeat(50);
        assert!(lookup(ntlm.as_bytes(), &hash_of("password")).is_err());
    }

    #[test]
    fn the_file_is_checked_at_start_up() {
        let dir = std::env::temp_dir().join(format!("doorman-pwned-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(PwnedFile::open(&dir.join("missing.txt")).is_err());
        let ntlm = dir.join("ntlm.txt");
        std::fs::write(&ntlm, "8846F7EAEE8FB117AD06BDD830B7586C:2\r\n").unwrap();
        assert!(PwnedFile::open(&ntlm).is_err());
        let sha1 = dir.join("sha1.txt");
        std::fs::write(&sha1, sorted_file(3, "\r\n").1).unwrap();
        assert!(PwnedFile::open(&sha1).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn s4_4_range_answers_ignore_padding_and_refuse_garbage() {
        let suffix = &hash_of("password")[5..];
        let mine = std::str::from_utf8(suffix).unwrap();
        let body = format!("003D68EB55068C33ACE09247EE4C639306B:3\r\n{mine}:9545824\r\n00A3B1D7C3B5E1A7E8F1C1B1B1B1B1B1B1B:0");
        assert_eq!(count_in_range(body.as_bytes(), suffix), Ok(Some(9545824)));
        let padded = format!("{mine}:0\r\n003D68EB55068C33ACE09247EE4C639306B:3\r\n");
        assert_eq!(count_in_range(padded.as_bytes(), suffix), Ok(None), "count 0 is padding");
        assert_eq!(count_in_range(mine.to_lowercase().as_bytes(), suffix), Err("the answer is not a list of SUFFIX:COUNT lines".into()));
        let lower = format!("{}:12\n", mine.to_lowercase());
        assert_eq!(count_in_range(lower.as_bytes(), suffix), Ok(Some(12)), "either case");
        assert!(count_in_range(b"<html>Service unavailable</html>", suffix).is_err());
        assert_eq!(count_in_range(b"", suffix), Ok(None));
    }

    /// A reader that counts its seeks: each probe of the search seeks once or twice.
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        seeks: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }
    impl BufRead for Counting<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            self.inner.fill_buf()
        }
        fn consume(&mut self, amount: usize) {
            self.inner.consume(amount)
        }
    }
    impl Seek for Counting<'_> {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.seeks += 1;
            self.inner.seek(to)
        }
    }

    #[test]
    fn s4_4_the_search_reads_a_logarithmic_number_of_lines() {
        let (hashes, file) = sorted_file(4096, "\r\n");
        for hash in [hashes[0], hashes[2048], hashes[4095], [b'7'; 40]] {
            let mut reader = Counting { inner: Cursor::new(&file), seeks: 0 };
            find_count(&mut reader, file.len() as u64, &hash).unwrap();
            // 4096 lines: about 12 halvings, at most two seeks each, plus a few steps
            // that land inside the last line.
            assert!(reader.seeks <= 40, "{} seeks", reader.seeks);
        }
    }

    #[tokio::test]
    async fn s4_4_a_failed_api_call_names_no_part_of_the_hash() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let api = RangeApi::new(&url::Url::parse(&format!("http://{closed}/")).unwrap(), Duration::from_secs(1)).unwrap();
        let password = Password::new("correct horse battery staple 42").unwrap();
        let error = api.times_seen(&password).await.unwrap_err().to_string();
        let hash = sha1_hex(&password);
        assert!(!error.contains(std::str::from_utf8(&hash[..5]).unwrap()), "{error}");
        assert!(error.contains("127.0.0.1"), "says which server failed: {error}");
    }
}
