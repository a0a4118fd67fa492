//! TPM 2.0 evidence through tss-esapi (feature `tpm`).
//!
//! The attestation key (AK) is a restricted ECDSA P-256 signing key created
//! as a primary key in the endorsement hierarchy from a fixed template:
//! primary keys derive from the hierarchy seed and the template, so every
//! start "loads" the same AK without storing it. Its public key, as P-256
//! SubjectPublicKeyInfo DER, goes into the passport (`tpm_ak`).
//!
//! Evidence for an attestation: reset PCR 16 (the resettable debug PCR; see
//! `verifier::tpm` — a deployment would quote measured-boot PCRs instead),
//! extend it with the code hash, and quote SHA-256 PCR 16 with the
//! attestation's qualifying data (`verifier::tpm::qualifying_data`: the
//! log's nonce, the agent's key and its claims). The log verifies the quote
//! in pure Rust.

use std::str::FromStr as _;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Value};
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::handles::{KeyHandle, PcrHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    Data, Digest, DigestValues, EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, PcrSelectionListBuilder, PcrSlot, Public,
    PublicBuilder, PublicEccParametersBuilder, Signature, SignatureScheme,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::Marshall as _;
use tss_esapi::Context;

use crate::{Attester, ClientError};

/// Produces TPM quotes as attestation evidence.
pub struct TpmAttester {
    tcti: String,
    inner: Mutex<(Context, KeyHandle)>,
    ak_spki: Vec<u8>,
}

impl std::fmt::Debug for TpmAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmAttester").field("tcti", &self.tcti).finish_non_exhaustive()
    }
}

fn tpm_err(tcti: &str, what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Tpm(format!("{what} (TCTI {tcti:?}): {e}"))
}

fn ak_template() -> Result<Public, tss_esapi::Error> {
    let params = PublicEccParametersBuilder::new()
        .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
        .with_curve(EccCurve::NistP256)
        .with_is_signing_key(true)
        .with_is_decryption_key(false)
        .with_restricted(true)
        .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
        .build()?;
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .with_restricted(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(params)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

impl TpmAttester {
    /// Opens the TPM at `tcti` (e.g. `swtpm:port=2321`, `device:/dev/tpmrm0`)
    /// and creates (or re-derives) the AK.
    pub fn new(tcti: &str) -> Result<Self, ClientError> {
        let conf = TctiNameConf::from_str(tcti).map_err(|e| tpm_err(tcti, "bad TCTI", e))?;
        let mut ctx = Context::new(conf).map_err(|e| tpm_err(tcti, "no TPM reachable", e))?;
        let template = ak_template().map_err(|e| tpm_err(tcti, "AK template", e))?;
        let created = ctx
            .execute_with_nullauth_session(|c| c.create_primary(Hierarchy::Endorsement, template, None, None, None, None))
            .map_err(|e| tpm_err(tcti, "creating the AK", e))?;
        let Public::Ecc { unique, .. } = &created.out_public else {
            return Err(tpm_err(tcti, "AK", "not an ECC key"));
        };
        let mut sec1 = vec![0x04];
        for coord in [unique.x().value(), unique.y().value()] {
            sec1.extend(std::iter::repeat_n(0u8, 32usize.saturating_sub(coord.len())));
            sec1.extend_from_slice(coord);
        }
        let key = p256::PublicKey::from_sec1_bytes(&sec1).map_err(|e| tpm_err(tcti, "AK public key", e))?;
        let ak_spki = key.to_public_key_der().map_err(|e| tpm_err(tcti, "AK public key", e))?.as_bytes().to_vec();
        Ok(Self { tcti: tcti.to_owned(), inner: Mutex::new((ctx, created.key_handle)), ak_spki })
    }

    /// The AK as P-256 SubjectPublicKeyInfo DER (the passport's `tpm_ak`).
    pub fn ak_spki_der(&self) -> &[u8] {
        &self.ak_spki
    }

    /// The AK in base64, as a passport carries it.
    pub fn ak_b64(&self) -> String {
        B64.encode(&self.ak_spki)
    }

    /// Resets PCR 16 and extends it with `code_hash`.
    pub fn measure(&self, code_hash: &[u8; 32]) -> Result<(), ClientError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (ctx, _) = &mut *guard;
        let tcti = &self.tcti;
        let mut values = DigestValues::new();
        values.set(HashingAlgorithm::Sha256, Digest::try_from(code_hash.to_vec()).map_err(|e| tpm_err(tcti, "digest", e))?);
        ctx.execute_with_nullauth_session(|c| {
            c.pcr_reset(PcrHandle::Pcr16)?;
            c.pcr_extend(PcrHandle::Pcr16, values)
        })
        .map_err(|e| tpm_err(tcti, "extending PCR 16", e))
    }

    /// Quotes SHA-256 PCR 16 with `qualifying_data` as `extraData` (at most
    /// 64 bytes; an attestation's is the 32 bytes of
    /// `verifier::tpm::qualifying_data`): the `TPMS_ATTEST` bytes and the
    /// signature as `r ‖ s`.
    pub fn quote(&self, qualifying_data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (ctx, ak) = &mut *guard;
        let tcti = &self.tcti;
        let selection = PcrSelectionListBuilder::new()
            .with_selection(HashingAlgorithm::Sha256, &[PcrSlot::Slot16])
            .build()
            .map_err(|e| tpm_err(tcti, "PCR selection", e))?;
        let data = Data::try_from(qualifying_data.to_vec()).map_err(|e| tpm_err(tcti, "qualifying data", e))?;
        let ak = *ak;
        let (attest, signature) = ctx
            .execute_with_nullauth_session(|c| c.quote(ak, data, SignatureScheme::Null, selection))
            .map_err(|e| tpm_err(tcti, "quote", e))?;
        let Signature::EcDsa(sig) = signature else {
            return Err(tpm_err(tcti, "quote", "not an ECDSA signature"));
        };
        let mut rs = Vec::with_capacity(64);
        for part in [sig.signature_r().value(), sig.signature_s().value()] {
            rs.extend(std::iter::repeat_n(0u8, 32usize.saturating_sub(part.len())));
            rs.extend_from_slice(part);
        }
        let bytes = attest.marshall().map_err(|e| tpm_err(tcti, "marshalling the quote", e))?;
        Ok((bytes, rs))
    }
}

impl Attester for TpmAttester {
    fn evidence(&self, qualifying_data: &[u8; 32], code_hash: &[u8; 32]) -> Result<Value, ClientError> {
        self.measure(code_hash)?;
        let (quote, signature) = self.quote(qualifying_data)?;
        Ok(json!({"type": "tpm", "quote": B64.encode(quote), "signature": B64.encode(signature)}))
    }
}
