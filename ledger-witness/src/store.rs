//! What a witness keeps on disk: its signing key, and per log the latest
//! checkpoint it cosigned (the note with the log's verified signatures and
//! the witness's cosignature), one file per origin, replaced atomically.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use verifier::cosignature::WitnessSigner;

use crate::WitnessError;

/// Lowercase hex of SHA-256 of the origin: the file name of its state, and
/// the `<origin hash>` of the monitoring path.
pub fn origin_hash(origin: &str) -> String {
    Sha256::digest(origin.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The directory holding one `<origin hash>.checkpoint` file per log.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Uses (creating if needed) `dir`.
    pub fn open(dir: &Path) -> Result<Self, WitnessError> {
        std::fs::create_dir_all(dir).map_err(|e| WitnessError::Io { path: dir.into(), source: e })?;
        Ok(Self { dir: dir.into() })
    }

    fn path(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", origin_hash(origin)))
    }

    /// The stored note of `origin`, if it was ever cosigned.
    pub fn load(&self, origin: &str) -> Result<Option<String>, WitnessError> {
        let path = self.path(origin);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(WitnessError::Io { path, source: e }),
        }
    }

    /// Durably replaces the stored note of `origin`: once this returns, a
    /// crash leaves either the old note or this one, never a mix.
    pub fn save(&self, origin: &str, note: &str) -> Result<(), WitnessError> {
        let path = self.path(origin);
        let tmp = path.with_extension("tmp");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| WitnessError::Io { path: p, source: e }
        };
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(note.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        Ok(())
    }
}

/// Loads the witness key kept at `path`, or creates one named `name`
/// (mode 0600) when there is no file. Returns the signer and whether it
/// was created now.
pub fn load_or_create_key(path: &Path, name: Option<&str>) -> Result<(WitnessSigner, bool), WitnessError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = WitnessSigner::parse(&text).map_err(|e| WitnessError::Key { path: path.into(), error: e })?;
            if let Some(name) = name.filter(|n| *n != signer.name()) {
                return Err(WitnessError::KeyName { path: path.into(), stored: signer.name().into(), requested: name.into() });
            }
            Ok((signer, false))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let name = name.ok_or_else(|| WitnessError::KeyNameMissing { path: path.into() })?;
            let signer = WitnessSigner::new(name, ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
                .map_err(|e| WitnessError::Key { path: path.into(), error: e })?;
            let io = |e| WitnessError::Io { path: path.into(), source: e };
            // create_new: never overwrite a key another process just wrote.
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
            file.write_all(format!("{}\n", signer.to_private_key()).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((signer, true))
        }
        Err(e) => Err(WitnessError::Io { path: path.into(), source: e }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn key_is_created_private_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        assert!(matches!(load_or_create_key(&path, None), Err(WitnessError::KeyNameMissing { .. })));
        let (created, fresh) = load_or_create_key(&path, Some("w.example/1")).unwrap();
        assert!(fresh);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (loaded, fresh) = load_or_create_key(&path, None).unwrap();
        assert!(!fresh);
        assert_eq!(loaded.witness_key(), created.witness_key());
        assert!(matches!(load_or_create_key(&path, Some("other")), Err(WitnessError::KeyName { .. })));
    }

    #[test]
    fn save_replaces_and_load_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.load("o").unwrap(), None);
        store.save("o", "one\n").unwrap();
        store.save("o", "two\n").unwrap();
        assert_eq!(store.load("o").unwrap().as_deref(), Some("two\n"));
        assert_eq!(std::fs::read_dir(dir.path().join("state")).unwrap().count(), 1);
    }
}
