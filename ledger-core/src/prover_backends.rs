//! Which range provers the log runs (`--prover-backend`): one for single
//! proofs and disclosures, one for batches of waiting commit proofs.

use std::sync::Arc;

use zk::prover::{Backend, CpuEngine, DalekProver, GroupEngine, LockstepProver, PrecomputedCpuProver, RangeProver};

use crate::Error;

/// Most commit requests proven in one batch.
pub const MAX_BATCH: usize = 1024;

/// The default smallest batch sent to the batch prover.
pub const DEFAULT_BATCH_MIN: usize = 32;

/// The range provers of the prover stage.
#[derive(Clone, Debug)]
pub struct ProverBackends {
    chosen: Backend,
    single: Arc<dyn RangeProver>,
    batch: Arc<dyn RangeProver>,
    batch_min: usize,
    fallback: Option<String>,
}

impl ProverBackends {
    /// The provers for `backend`: `dalek` and `precomputed` prove
    /// everything themselves; `lockstep-cpu` and `cuda` prove single
    /// proofs on the precomputed CPU prover and batches of at least
    /// `batch_min` (at least 2) in lockstep, on the GPU for `cuda`, where
    /// `gpu_secrets` says whether the GPU also computes the secret-dependent
    /// `A` and `S` (in constant time) or leaves them to the CPU. Without a
    /// usable GPU (or without the `cuda` feature) `cuda` falls back to
    /// `lockstep-cpu`, or, when `strict`, refuses with [`Error::Config`].
    pub fn new(backend: Backend, batch_min: usize, strict: bool, gpu_secrets: bool) -> Result<Self, Error> {
        let lockstep = |engine: Arc<dyn GroupEngine>| Arc::new(LockstepProver::new(engine, MAX_BATCH)) as Arc<dyn RangeProver>;
        let (single, batch, fallback): (Arc<dyn RangeProver>, Arc<dyn RangeProver>, Option<String>) = match backend {
            Backend::Dalek => (Arc::new(DalekProver), Arc::new(DalekProver), None),
            Backend::Precomputed => (Arc::new(PrecomputedCpuProver), Arc::new(PrecomputedCpuProver), None),
            Backend::LockstepCpu => (Arc::new(PrecomputedCpuProver), lockstep(Arc::new(CpuEngine)), None),
            Backend::Cuda => match cuda_engine(gpu_secrets) {
                Ok(engine) => (Arc::new(PrecomputedCpuProver), lockstep(engine), None),
                Err(why) if strict => return Err(Error::Config(format!("prover backend cuda: {why}"))),
                Err(why) => (Arc::new(PrecomputedCpuProver), lockstep(Arc::new(CpuEngine)), Some(why)),
            },
        };
        Ok(Self { chosen: backend, single, batch, batch_min: batch_min.max(2), fallback })
    }

    /// The backend asked for.
    pub fn chosen(&self) -> Backend {
        self.chosen
    }

    /// Proves single proofs, small batches and disclosures.
    pub fn single(&self) -> &Arc<dyn RangeProver> {
        &self.single
    }

    /// Proves batches of at least [`Self::batch_min`].
    pub fn batch(&self) -> &Arc<dyn RangeProver> {
        &self.batch
    }

    /// The smallest batch sent to [`Self::batch`].
    pub fn batch_min(&self) -> usize {
        self.batch_min
    }

    /// Why the batch prover is not the one asked for (e.g. no GPU), if so.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

#[cfg(test)]
impl ProverBackends {
    /// Given provers, for the batcher's tests.
    pub(crate) fn of(single: Arc<dyn RangeProver>, batch: Arc<dyn RangeProver>, batch_min: usize) -> Self {
        Self { chosen: Backend::LockstepCpu, single, batch, batch_min, fallback: None }
    }
}

impl Default for ProverBackends {
    fn default() -> Self {
        Self {
            chosen: Backend::Precomputed,
            single: Arc::new(PrecomputedCpuProver),
            batch: Arc::new(PrecomputedCpuProver),
            batch_min: DEFAULT_BATCH_MIN,
            fallback: None,
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_engine(gpu_secrets: bool) -> Result<Arc<dyn GroupEngine>, String> {
    let engine = Arc::new(zk_cuda::CudaEngine::new().map_err(|e| e.to_string())?);
    Ok(match gpu_secrets {
        true => engine,
        false => Arc::new(zk_cuda::PublicOnly::new(engine)),
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_engine(_gpu_secrets: bool) -> Result<Arc<dyn GroupEngine>, String> {
    Err("this build has no CUDA support (build with --features cuda)".into())
}
