//! Output: files written privately and atomically, a staging directory published by one
//! rename, and the text and JSON forms of records.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use onboarding_token::{BatchId, Expiry, PolicyId, Status, SystemRng, Token, UsageLimit};
use serde_json::{Value, json};

use crate::Failure;

/// A short random suffix for temporary names.
fn random_suffix() -> String {
    let mut rng = SystemRng::default();
    let mut s = BatchId::generate(&mut rng).to_string();
    s.truncate(12);
    s
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Flushes a directory's entries (renames, creations) to disk, where the platform allows.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file created (mode 0600) under a temporary name beside its destination, renamed into
/// place by [`commit`](PendingFile::commit); removed if dropped uncommitted.
///
/// Creating it before the work that produces its contents checks early that the
/// destination is writable.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl PendingFile {
    /// Creates the temporary file beside `dest`.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
        })?;
        if dest.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "the path is a directory",
            ));
        }
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", random_suffix()));
        let tmp = parent_of(dest).join(tmp_name);
        let file = private_options().open(&tmp)?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
            file: Some(file),
        })
    }

    /// Writes `contents`, flushes them to disk and renames the file into place.
    pub fn commit(mut self, contents: &[u8]) -> io::Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("file already committed"))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.dest)?;
        // Renamed: nothing left to clean up.
        self.tmp = PathBuf::new();
        sync_dir(parent_of(&self.dest))
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A directory filled under a temporary name beside its destination and renamed into
/// place by [`commit`](StagingDir::commit), so the destination either does not exist (or
/// stays empty) or holds every file. Removed if dropped uncommitted.
#[derive(Debug)]
pub struct StagingDir {
    tmp: PathBuf,
    dest: PathBuf,
}

impl StagingDir {
    /// Checks that `dest` does not exist or is an empty directory, creates its parent
    /// directories, and creates the staging directory (mode 0700) beside it.
    pub fn create(dest: &Path) -> Result<Self, String> {
        let shown = dest.display();
        let name = match dest.file_name() {
            Some(name) => name,
            None => return Err(format!("{shown} does not name a directory")),
        };
        match fs::read_dir(dest) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(format!(
                        "{shown} is not empty; choose a new directory so batches never mix"
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) if dest.exists() => return Err(format!("{shown} is not a directory")),
            Err(e) => return Err(format!("{shown}: {e}")),
        }
        let parent = parent_of(dest);
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", random_suffix()));
        let tmp = parent.join(tmp_name);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// Writes a new file (mode 0600) into the staging directory and flushes it to disk.
    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        let mut file = private_options().open(self.tmp.join(name))?;
        file.write_all(contents)?;
        file.sync_all()
    }

    /// Moves the staging directory to its destination.
    pub fn commit(mut self) -> io::Result<()> {
        sync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.dest)?;
        self.tmp = PathBuf::new();
        sync_dir(parent_of(&self.dest))
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Text from the store made safe for a terminal: control characters and bidirectional
/// overrides are shown as `\u{…}` escapes instead of acting on the terminal.
pub fn clean(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// RFC 3339 in UTC with `Z`, as precise as the time is.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `2026-05-01 09:30Z`, for tables.
pub fn short_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%MZ").to_string()
}

/// `1`, `25` or `unlimited`.
pub fn limit_text(limit: UsageLimit) -> String {
    limit
        .max_uses()
        .map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// The limit as JSON: a number, or `"unlimited"`.
pub fn limit_json(limit: UsageLimit) -> Value {
    limit.max_uses().map_or(json!("unlimited"), |n| json!(n))
}

/// `a, b` or `-`.
pub fn policies_text(policies: &[PolicyId]) -> String {
    if policies.is_empty() {
        "-".to_owned()
    } else {
        policies
            .iter()
            .map(PolicyId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The validity window in a few words: `until …`, `from … until …`, `never expires`.
pub fn validity_text(token: &Token) -> String {
    let validity = token.validity();
    let until = match validity.expiry {
        Expiry::At(t) => format!("until {}", short_time(t)),
        Expiry::Never => "never expires".to_owned(),
    };
    match validity.not_before {
        Some(t) => format!("from {} {until}", short_time(t)),
        None => until,
    }
}

/// A token's record as JSON (never its token string).
pub fn token_json(token: &Token, status: Status) -> Value {
    let validity = token.validity();
    let revocation = token.revocation();
    json!({
        "id": token.id().to_string(),
        "status": status.as_str(),
        "organization": token.organization().as_str(),
        "group": token.group().as_str(),
        "policies": token.policies().iter().map(PolicyId::as_str).collect::<Vec<_>>(),
        "uses": token.uses(),
        "limit": limit_json(token.usage_limit()),
        "not_before": validity.not_before.map(rfc3339),
        "expires": match validity.expiry {
            Expiry::At(t) => json!(rfc3339(t)),
            Expiry::Never => json!("never"),
        },
        "created_at": rfc3339(token.created_at()),
        "description": token.description(),
        "metadata": token.metadata().as_map(),
        "batch": token.batch().map(|b| b.to_string()),
        "key_id": token.key_id().to_string(),
        "revoked_at": revocation.map(|r| rfc3339(r.revoked_at())),
        "revocation_reason": revocation.map(|r| r.reason()),
    })
}

/// Writes one line to standard output. A reader that went away (`tokenctl list | head`)
/// ends the command quietly; other failures are errors.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(stdout_failure)
}

/// Writes bytes to standard output as they are.
pub fn write_stdout_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_failure)
}

fn stdout_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::Closed
    } else {
        Failure::Error(format!("standard output: {e}"))
    }
}

/// Writes one line to standard error, ignoring failures: there is nowhere left to report
/// them.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &Value) -> Result<(), Failure> {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned())
    )
}

/// Prints rows as a left-aligned table with a header, columns two spaces apart.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                let pad = w.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        outln!("{}", out.trim_end())
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_controls() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn truncate_marks_cuts() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
