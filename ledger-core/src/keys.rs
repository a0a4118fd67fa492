//! The log's signing key: loaded from a file, or generated on first start.
//!
//! The key file holds one line in the Go `sumdb/note` signer format,
//! `PRIVATE+KEY+<origin>+<hex8 key id>+<base64(0x01 || seed)>`, and is created
//! with mode 0600 (written to a temporary file, synced, then renamed).

use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use verifier::note::NoteSigner;

use crate::Error;

/// Name of the key file inside a data directory.
pub const KEY_FILE: &str = "log.key";

/// The origin of the key stored at `path`, `None` if there is no key yet.
pub fn stored_origin(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = NoteSigner::parse(&text).map_err(|e| Error::Config(format!("log key {}: {e}", path.display())))?;
            Ok(Some(signer.verifier_key().name().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!("reading log key {}: {e}", path.display()))),
    }
}

/// Loads the signer at `path`, or creates one named `origin` if absent.
/// An existing key for another origin is an error: it belongs to another log.
pub fn load_or_create_signer(path: &Path, origin: &str) -> Result<NoteSigner, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = NoteSigner::parse(&text).map_err(|e| Error::Config(format!("log key {}: {e}", path.display())))?;
            let name = signer.verifier_key().name().to_owned();
            if name != origin {
                return Err(Error::Config(format!("log key {} is for origin {name:?}, not {origin:?}", path.display())));
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer =
                NoteSigner::new(origin, SigningKey::generate(&mut OsRng)).map_err(|e| Error::Config(format!("origin {origin:?}: {e}")))?;
            write_private(path, &signer.to_private_key())?;
            Ok(signer)
        }
        Err(e) => Err(Error::Config(format!("reading log key {}: {e}", path.display()))),
    }
}

/// Name of the openings encryption key file inside a data directory.
pub const OPENINGS_KEY_FILE: &str = "openings.key";

/// Loads a secret kept as one line of text at `path`, or creates one (32
/// random bytes, base64url) with mode 0600. Returns the text and whether it
/// was created now.
pub fn load_or_create_secret(path: &Path, what: &str) -> Result<(String, bool), Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text.trim().to_owned(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use base64::Engine as _;
            let mut bytes = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut bytes);
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write_private(path, &text)?;
            Ok((text, true))
        }
        Err(e) => Err(Error::Config(format!("reading {what} {}: {e}", path.display()))),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Config(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&tmp).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
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
}
