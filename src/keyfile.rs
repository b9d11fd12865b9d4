//! Keeping a [`Keyring`] in a file: created with mode `0600`, refused when others can read it.
//!
//! This is the format `tokenctl` and the example MDM server share: the text of
//! [`Keyring::export_secret_text`], one key per line. Writes are atomic (a temporary file in
//! the same directory, then a rename), so a crash never leaves a half-written key file.
//!
//! ```no_run
//! use onboarding_token::keyfile;
//! let mut rng = onboarding_token::SystemRng::default();
//! let (keyring, created) = keyfile::load_or_create("onboarding-token.key".as_ref(), &mut rng)?;
//! # let _ = (keyring, created);
//! # Ok::<(), keyfile::KeyFileError>(())
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::core::keys::{Keyring, KeyringError, SigningKey};

/// The largest key file read, in bytes.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key file could not be read or written. Messages name the path, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file does not exist.
    #[error("key file {} does not exist (create it with `tokenctl init`)", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file can be read or written by its group or others.
    #[error(
        "key file {} is accessible by group or others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TooOpen {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than [`MAX_KEY_FILE`].
    #[error("key file {} is too large to be a key file", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
    },
    /// The file exists already (when creating).
    #[error("key file {} already exists", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The contents are not a keyring.
    #[error("key file {} is not a valid keyring: {source}", path.display())]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: KeyringError,
    },
    /// The contents are not UTF-8.
    #[error("key file {} is not text", path.display())]
    NotText {
        /// The path.
        path: PathBuf,
    },
    /// An I/O error.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}

/// Reads a keyring, refusing a file that group or others may access (on Unix).
///
/// The file is opened once and its permissions and size are checked on the open handle,
/// so it cannot be swapped between the check and the read.
pub fn load(path: &Path) -> Result<Keyring, KeyFileError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(KeyFileError::Missing {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(io_err(path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    check_mode(path, &meta)?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    // One byte to spare, so reading to the end never reallocates (and leaves a copy of
    // the key material behind that would not be zeroized).
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        // It grew after the check.
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::NotText {
        path: path.to_owned(),
    })?;
    Keyring::from_secret_text(text).map_err(|source| KeyFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Creates a new file with mode `0600` (on Unix), writes `contents` and flushes them to disk.
fn write_new_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Flushes a directory's entries (a rename or a new link) to disk, where the platform allows.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::File::open(parent)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// A temporary file beside `path` holding `contents` (mode `0600`), under a name no other
/// writer uses; removed again by [`TempFile`]'s drop unless it was renamed.
struct TempFile(PathBuf);

impl TempFile {
    fn write(path: &Path, contents: &[u8]) -> Result<Self, KeyFileError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last = None;
        for _ in 0..8 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let mut name = path.as_os_str().to_owned();
            name.push(format!(
                ".tmp-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let tmp = PathBuf::from(name);
            match write_new_private(&tmp, contents) {
                Ok(()) => return Ok(Self(tmp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(io_err(&tmp)(e));
                }
            }
        }
        let (tmp, e) =
            last.unwrap_or_else(|| (path.to_owned(), io::ErrorKind::AlreadyExists.into()));
        Err(io_err(&tmp)(e))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `keyring` to `path` atomically with mode `0600`, replacing any existing file.
///
/// The keyring goes to a new temporary file in the same directory (a unique name per
/// writer), is flushed to disk, and is renamed over `path`: readers see the old file or
/// the new one, never a mix, and a crash leaves at most a stray temporary file.
pub fn save(path: &Path, keyring: &Keyring) -> Result<(), KeyFileError> {
    let text = keyring.export_secret_text();
    let tmp = TempFile::write(path, text.as_bytes())?;
    fs::rename(&tmp.0, path).map_err(io_err(path))?;
    sync_parent(path).map_err(io_err(path))
}

/// Creates a new key file holding `keyring`, failing with [`KeyFileError::Exists`] if the
/// file exists.
///
/// Like [`save`], the keyring is written to a temporary file first; it is then linked to
/// `path`, which fails if `path` exists. So `path` appears complete or not at all, and an
/// existing file is never replaced. (On file systems without hard links the file is
/// created in place, still without replacing an existing one.)
pub fn create(path: &Path, keyring: &Keyring) -> Result<(), KeyFileError> {
    let exists = || KeyFileError::Exists {
        path: path.to_owned(),
    };
    let text = keyring.export_secret_text();
    let tmp = TempFile::write(path, text.as_bytes())?;
    match fs::hard_link(&tmp.0, path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(_) => {
            // No hard links here (or another refusal): create the file in place.
            drop(tmp);
            return write_new_private(path, text.as_bytes()).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    exists()
                } else {
                    // Do not leave a partial key file behind.
                    let _ = fs::remove_file(path);
                    io_err(path)(e)
                }
            });
        }
    }
    drop(tmp);
    sync_parent(path).map_err(io_err(path))
}

/// Loads the keyring at `path`, or creates a file with one fresh key if there is none.
/// Returns whether it was created.
pub fn load_or_create<R: CryptoRng + ?Sized>(
    path: &Path,
    rng: &mut R,
) -> Result<(Keyring, bool), KeyFileError> {
    match load(path) {
        Ok(keyring) => Ok((keyring, false)),
        Err(KeyFileError::Missing { .. }) => {
            let keyring = Keyring::new(SigningKey::generate(rng));
            create(path, &keyring)?;
            Ok((keyring, true))
        }
        Err(e) => Err(e),
    }
}
