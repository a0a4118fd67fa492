//! The range-prover backends and how one is chosen by name.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;

use super::engine::{CpuEngine, GroupEngine};
use super::fold_free::{prove_lockstep, Profile, ProfileTimes};
use super::gens::ShapeBases;
use super::range::{RangeJob, RangeOutput, RangeProver};
use crate::error::BackendFailure;

/// bulletproofs 5.0's own prover, one proof per rayon task: the reference
/// the other backends are byte-identical to.
#[derive(Clone, Copy, Debug, Default)]
pub struct DalekProver;

impl DalekProver {
    fn prove_one(job: RangeJob<'_>) -> Result<RangeOutput, BackendFailure> {
        let RangeJob { mut transcript, values, blindings, bits, mut rng } = job;
        let params = crate::params();
        let (proof, commitments) =
            bulletproofs::RangeProof::prove_multiple_with_rng(&params.bp, &params.pc, &mut transcript, &values, &blindings, bits, &mut rng)
                .map_err(|_| BackendFailure::Refused)?;
        Ok(RangeOutput { proof, commitments })
    }
}

impl RangeProver for DalekProver {
    fn name(&self) -> &'static str {
        Backend::Dalek.name()
    }

    fn prove(&self, jobs: Vec<RangeJob<'_>>) -> Vec<Result<RangeOutput, BackendFailure>> {
        jobs.into_par_iter().map(Self::prove_one).collect()
    }
}

/// The fold-free prover on the CPU, one proof per rayon task, over
/// precomputed tables of each shape's generators: dalek's proofs, byte for
/// byte, in about half the time (see `docs/PERFORMANCE.md`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PrecomputedCpuProver;

impl RangeProver for PrecomputedCpuProver {
    fn name(&self) -> &'static str {
        Backend::Precomputed.name()
    }

    fn prove(&self, jobs: Vec<RangeJob<'_>>) -> Vec<Result<RangeOutput, BackendFailure>> {
        jobs.into_par_iter()
            .map(|job| {
                let Ok(shape) = ShapeBases::get(job.bits, job.values.len()) else {
                    return Err(BackendFailure::Refused);
                };
                prove_lockstep(&CpuEngine, &shape, vec![job], None).pop().unwrap_or(Err(BackendFailure::Refused))
            })
            .collect()
    }
}

/// Runs proofs of one shape together, round by round: the per-proof
/// scalar work in parallel on the CPU, each round's group work for the
/// whole batch in one call to its engine. A batch of one is the
/// [`PrecomputedCpuProver`].
#[derive(Debug)]
pub struct LockstepProver {
    engine: Arc<dyn GroupEngine>,
    max_batch: usize,
    profile: Profile,
}

impl LockstepProver {
    /// Batches of at most `max_batch` proofs (at least 1) on `engine`.
    pub fn new(engine: Arc<dyn GroupEngine>, max_batch: usize) -> Self {
        Self { engine, max_batch: max_batch.max(1), profile: Profile::default() }
    }

    /// Where its time went so far.
    pub fn profile(&self) -> ProfileTimes {
        self.profile.times()
    }

    /// The engine's name.
    pub fn engine(&self) -> &'static str {
        self.engine.name()
    }
}

impl RangeProver for LockstepProver {
    /// `lockstep-cpu` on the [`CpuEngine`], else the engine's own name
    /// (`cuda`).
    fn name(&self) -> &'static str {
        match self.engine.name() {
            "cpu" => Backend::LockstepCpu.name(),
            other => other,
        }
    }

    fn prove(&self, jobs: Vec<RangeJob<'_>>) -> Vec<Result<RangeOutput, BackendFailure>> {
        let total = jobs.len();
        let mut out: Vec<Option<Result<RangeOutput, BackendFailure>>> = (0..total).map(|_| None).collect();
        let mut groups: BTreeMap<(usize, usize), ShapeGroup<'_>> = BTreeMap::new();
        for (i, job) in jobs.into_iter().enumerate() {
            let key = (job.bits, job.values.len());
            if let Some((_, group)) = groups.get_mut(&key) {
                group.push((i, job));
                continue;
            }
            match ShapeBases::get(key.0, key.1) {
                Ok(shape) => {
                    groups.insert(key, (shape, vec![(i, job)]));
                }
                Err(_) => out[i] = Some(Err(BackendFailure::Refused)),
            }
        }
        for (shape, mut group) in groups.into_values() {
            while !group.is_empty() {
                let rest = group.split_off(group.len().min(self.max_batch));
                let (index, batch): (Vec<usize>, Vec<RangeJob<'_>>) = group.into_iter().unzip();
                for (i, r) in index.into_iter().zip(prove_lockstep(self.engine.as_ref(), &shape, batch, Some(&self.profile))) {
                    out[i] = Some(r);
                }
                group = rest;
            }
        }
        out.into_iter().map(|r| r.unwrap_or(Err(BackendFailure::Refused))).collect()
    }
}

/// Jobs of one shape, with their places in the call.
type ShapeGroup<'a> = (Arc<ShapeBases>, Vec<(usize, RangeJob<'a>)>);

/// The backends by name (`--prover-backend`, `LEDGER_PROVER_BACKEND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// [`DalekProver`].
    Dalek,
    /// [`PrecomputedCpuProver`] (the default).
    Precomputed,
    /// [`LockstepProver`] on the [`CpuEngine`].
    LockstepCpu,
    /// [`LockstepProver`] on a CUDA engine (the `zk-cuda` crate).
    Cuda,
}

impl Backend {
    /// Every backend, in documentation order.
    pub const ALL: [Backend; 4] = [Backend::Dalek, Backend::Precomputed, Backend::LockstepCpu, Backend::Cuda];

    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Dalek => "dalek",
            Backend::Precomputed => "precomputed",
            Backend::LockstepCpu => "lockstep-cpu",
            Backend::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one of [`Backend::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown prover backend {0:?} (one of: {names})", names = Backend::ALL.map(Backend::name).join(", "))]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}
