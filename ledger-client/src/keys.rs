//! The agent's Ed25519 key: generated once, kept in a file with mode 0600
//! (base64 of the 32-byte seed).

use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;

use crate::ClientError;

/// Loads the key at `path`, or generates and stores one (mode 0600).
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, ClientError> {
    match load_key(path) {
        Err(ClientError::Key(_)) if !path.exists() => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            save_key(path, &key, false)?;
            Ok(key)
        }
        loaded => loaded,
    }
}

/// Loads the key at `path` (base64 of the 32-byte seed). On Unix a file
/// that its group or others may read or write is refused: the key is the
/// agent's identity.
pub fn load_key(path: &Path) -> Result<SigningKey, ClientError> {
    let bad = |why: String| ClientError::Key(format!("{}: {why}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata().map_err(|e| bad(e.to_string()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!("mode {:o} lets others read or write the key; chmod 600 it", mode & 0o777)));
        }
    }
    // A key file is 44 characters; read a little more to tell it from a
    // larger file without reading all of one.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&mut file, 256), &mut text).map_err(|e| bad(e.to_string()))?;
    let seed = B64.decode(text.trim()).map_err(|_| bad("not base64".into()))?;
    let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| bad("not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Stores `key` at `path` with mode 0600: written whole to a temporary
/// file beside it, synced, then renamed over `path` (an existing file only
/// with `overwrite`), so a crash leaves the old key or the new one, never
/// half of one.
pub fn save_key(path: &Path, key: &SigningKey, overwrite: bool) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::Key(format!("{}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let name = path.file_name().ok_or_else(|| ClientError::Key(format!("{}: not a file name", path.display())))?;
    // A fresh name, created here and nowhere else (no symlink or file
    // planted at a guessable name is ever opened).
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", rand_core::RngCore::next_u64(&mut rand_core::OsRng)));
    let tmp = dir.join(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = (|| {
        let mut file = opts.open(&tmp)?;
        file.write_all(B64.encode(key.to_bytes()).as_bytes())?;
        file.sync_all()?;
        if overwrite {
            std::fs::rename(&tmp, path)
        } else {
            // hard_link fails if `path` exists: no key is ever replaced
            // by accident.
            std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
        }
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)?;
    std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
}

/// The base64 public key, as a passport carries it.
pub fn public_key_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_saved_0600_never_replaced_by_accident_and_loose_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let key = SigningKey::from_bytes(&[3; 32]);
        save_key(&path, &key, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load_key(&path).unwrap().to_bytes(), key.to_bytes());
        let other = SigningKey::from_bytes(&[4; 32]);
        assert!(matches!(save_key(&path, &other, false), Err(ClientError::Key(_))));
        assert_eq!(load_or_create_key(&path).unwrap().to_bytes(), key.to_bytes());
        save_key(&path, &other, true).unwrap();
        assert_eq!(load_key(&path).unwrap().to_bytes(), other.to_bytes());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_key(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
