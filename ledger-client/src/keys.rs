//! The agent's Ed25519 key: generated once, kept in a file with mode 0600
//! (base64 of the 32-byte seed).

use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;

use crate::ClientError;

/// Loads the key at `path`, or generates and stores one.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, ClientError> {
    let io = |e: std::io::Error| ClientError::Key(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let seed = B64.decode(text.trim()).map_err(|_| ClientError::Key(format!("{}: not base64", path.display())))?;
            let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| ClientError::Key(format!("{}: not 32 bytes", path.display())))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(path).map_err(io)?;
            file.write_all(B64.encode(key.to_bytes()).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The base64 public key, as a passport carries it.
pub fn public_key_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().as_bytes())
}
