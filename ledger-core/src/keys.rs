//! The log's signing key: loaded from a file, or generated on first start.
//!
//! The key file holds one line in the Go `sumdb/note` signer format,
//! `PRIVATE+KEY+<origin>+<hex8 key id>+<base64(0x01 || seed)>`. Secret files
//! (this key, the openings key, the admin token) are created with mode 0600
//! under a fresh random temporary name (`create_new`, so a planted file or
//! symlink is never followed or truncated), synced, renamed into place, and
//! the directory synced. On Unix a secret file that group or others may
//! access is refused at load, with the `chmod` that fixes it.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use verifier::note::NoteSigner;

use crate::Error;

/// Name of the key file inside a data directory.
pub const KEY_FILE: &str = "log.key";

/// The origin of the key stored at `path`, `None` if there is no key yet.
pub fn stored_origin(path: &Path) -> Result<Option<String>, Error> {
    let Some(text) = read_secret(path, "log key")? else { return Ok(None) };
    let signer = NoteSigner::parse(&text).map_err(|e| Error::Config(format!("log key {}: {e}", path.display())))?;
    Ok(Some(signer.verifier_key().name().to_owned()))
}

/// Loads the signer at `path`, or creates one named `origin` if absent.
/// An existing key for another origin is an error: it belongs to another log.
pub fn load_or_create_signer(path: &Path, origin: &str) -> Result<NoteSigner, Error> {
    match read_secret(path, "log key")? {
        Some(text) => {
            let signer = NoteSigner::parse(&text).map_err(|e| Error::Config(format!("log key {}: {e}", path.display())))?;
            let name = signer.verifier_key().name().to_owned();
            if name != origin {
                return Err(Error::Config(format!("log key {} is for origin {name:?}, not {origin:?}", path.display())));
            }
            Ok(signer)
        }
        None => {
            let signer =
                NoteSigner::new(origin, SigningKey::generate(&mut OsRng)).map_err(|e| Error::Config(format!("origin {origin:?}: {e}")))?;
            write_private(path, &signer.to_private_key())?;
            Ok(signer)
        }
    }
}

/// Name of the openings encryption key file inside a data directory.
pub const OPENINGS_KEY_FILE: &str = "openings.key";

/// Loads a secret kept as one line of text at `path`, or creates one (32
/// random bytes, base64url) with mode 0600. Returns the text and whether it
/// was created now.
pub fn load_or_create_secret(path: &Path, what: &str) -> Result<(String, bool), Error> {
    load_or_create_with(path, what, || {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut bytes);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    })
}

/// Loads a secret kept as one line of text at `path`, or creates it from
/// `make` with mode 0600 (other keys kept beside the log's, such as the
/// SSF transmitter's signing key). Returns the text and whether it was
/// created now.
pub fn load_or_create_with(path: &Path, what: &str, make: impl FnOnce() -> Result<String, Error>) -> Result<(String, bool), Error> {
    match read_secret(path, what)? {
        Some(text) => Ok((text.trim().to_owned(), false)),
        None => {
            let text = make()?;
            write_private(path, &text)?;
            Ok((text, true))
        }
    }
}

/// Reads a secret file that must exist (a file of tokens, say), with the
/// same refusal of files that group or others may access.
pub fn read_secret_file(path: &Path, what: &str) -> Result<String, Error> {
    read_secret(path, what)?.ok_or_else(|| Error::Config(format!("{what} {} does not exist", path.display())))
}

/// Reads the secret file at `path` (`None` if there is none). On Unix, a
/// file that group or others may read or write is refused: its secret may
/// already have leaked, or may be replaced, and starting anyway would hide
/// that. The mode is taken from the opened file, not the path, so a swap
/// between the check and the read cannot slip past it.
fn read_secret(path: &Path, what: &str) -> Result<Option<String>, Error> {
    let failed = |e: std::io::Error| Error::Config(format!("reading {what} {}: {e}", path.display()));
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata().map_err(failed)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{what} {} is accessible to group or others (mode {mode:04o}); run `chmod 600 {}` (and consider replacing the secret), then start again",
                path.display(),
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(failed)?;
    Ok(Some(text))
}

/// Writes a secret file atomically with mode 0600. The temporary file gets
/// a fresh random name and is opened with `create_new`: a fixed name could
/// be pre-created by another local user (as a symlink, or with looser
/// permissions) and would then be followed or reused.
fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Config(format!("writing {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| Error::Config(format!("{} does not name a file", path.display())))?;
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut nonce = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
    let suffix: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    // Only a file this call created is ever cleaned up.
    let mut file = opts.open(&tmp).map_err(io)?;
    let written = write_synced(&mut file, contents).and_then(|()| {
        drop(file);
        std::fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    sync_dir(&dir).map_err(io)
}

fn write_synced(file: &mut std::fs::File, contents: &str) -> std::io::Result<()> {
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Makes a rename in `dir` durable (the new name survives a crash).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_and_checks_origin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        let a = load_or_create_signer(&path, "example.com/log").unwrap();
        let b = load_or_create_signer(&path, "example.com/log").unwrap();
        assert_eq!(a.verifier_key(), b.verifier_key());
        assert!(matches!(load_or_create_signer(&path, "other.example/log"), Err(Error::Config(_))));
        assert_eq!(stored_origin(&path).unwrap().as_deref(), Some("example.com/log"));
        assert_eq!(stored_origin(&dir.path().join("none")).unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    /// The attack on a fixed temporary name: another local user plants
    /// `log.key.tmp` as a symlink to a file of theirs (or of a victim); the
    /// old code truncated and wrote the new private key through it.
    #[cfg(unix)]
    #[test]
    fn a_planted_temporary_file_is_never_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched\n").unwrap();
        for planted in ["log.key.tmp", "admin.tmp", "openings.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).unwrap();
        }
        let path = dir.path().join(KEY_FILE);
        let signer = load_or_create_signer(&path, "example.com/log").unwrap();
        let (token, created) = load_or_create_secret(&dir.path().join("admin.token"), "admin token").unwrap();
        assert!(created);
        assert_eq!(load_or_create_secret(&dir.path().join("admin.token"), "admin token").unwrap(), (token, false));
        load_or_create_secret(&dir.path().join(OPENINGS_KEY_FILE), "openings key").unwrap();

        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
        assert_eq!(load_or_create_signer(&path, "example.com/log").unwrap().verifier_key(), signer.verifier_key());
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        // No temporary file is left behind, and the planted ones are untouched.
        assert_eq!(names, ["admin.tmp", "admin.token", "log.key", "log.key.tmp", "openings.key", "openings.tmp", "victim"]);
        for secret in ["admin.token", "log.key", "openings.key"] {
            assert_eq!(std::fs::metadata(dir.path().join(secret)).unwrap().permissions().mode() & 0o777, 0o600, "{secret}");
        }
    }

    /// A secret file others can read may already have leaked; the server
    /// refuses it with the fix in the message instead of starting quietly.
    #[cfg(unix)]
    #[test]
    fn secret_files_open_to_group_or_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(KEY_FILE);
        let token = dir.path().join("admin.token");
        let signer = load_or_create_signer(&key, "example.com/log").unwrap();
        let (text, _) = load_or_create_secret(&token, "admin token").unwrap();
        let chmod = |path: &Path, mode: u32| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let refused = |e: Error, path: &Path| match e {
            Error::Config(message) => {
                assert!(message.contains(&path.display().to_string()), "{message}");
                assert!(message.contains("chmod 600"), "{message}");
            }
            other => panic!("expected Error::Config, got {other:?}"),
        };

        for mode in [0o644, 0o640, 0o604, 0o660] {
            chmod(&key, mode);
            refused(load_or_create_signer(&key, "example.com/log").unwrap_err(), &key);
            refused(stored_origin(&key).unwrap_err(), &key);
            chmod(&token, mode);
            refused(load_or_create_secret(&token, "admin token").unwrap_err(), &token);
        }
        // Refusing changes nothing: after `chmod 600` the same secrets load.
        chmod(&key, 0o600);
        chmod(&token, 0o400);
        assert_eq!(load_or_create_signer(&key, "example.com/log").unwrap().verifier_key(), signer.verifier_key());
        assert_eq!(load_or_create_secret(&token, "admin token").unwrap(), (text, false));
    }
}
