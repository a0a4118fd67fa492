//! [`CudaEngine`]: the fold-free prover's public multiscalar
//! multiplications and its constant-time `A`, `S` commitments on an
//! NVIDIA GPU, through the CUDA driver API (`cudarc`, loaded with
//! `dlopen`) and the PTX of `cuda/kernels.cu`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PinnedHostSlice, PushKernelArg};
use cudarc::nvrtc::Ptx;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use zeroize::Zeroize;
use zk::prover::engine::{BitSecrets, GroupEngine};
use zk::prover::gens::ShapeBases;
use zk::BackendFailure;

use crate::host::{compressed, TableLayout};
use crate::secret::{secret_bases, Records};

/// `nvrtc`/`nvcc -ptx -arch=compute_80` output of `cuda/kernels.cu`,
/// JIT-compiled by the driver for the GPU at hand when the engine starts.
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));

/// Bytes of a `zk_p3` and a `zk_niels` (`cuda/curve25519.cuh`).
const P3_BYTES: usize = 160;
const NIELS_BYTES: usize = 128;
/// Bytes of one table-building scratch entry (`zk_scratch`).
const SCRATCH_BYTES: usize = 160;
/// Window entries built per `zk_build_tables` launch: bounds its scratch
/// to 8192 · 128 · 160 B = 160 MiB whatever the shape and layout.
const BUILD_CHUNK_ENTRIES: usize = 8192 * 128;
/// Threads per block of the per-base, per-window and per-row kernels.
const SMALL_BLOCK: u32 = 64;
/// Scalars packed per rayon task (1 MiB). On an H100 host, 256 KiB tasks
/// packed fastest but slowed the upload that follows (write-combined
/// lines still in flight on many cores); 8 MiB tasks left a 8 MiB batch
/// on one core (1 ms to pack).
const PACK_CHUNK: usize = 1 << 15;
/// Threads per block of `zk_msm` and `zk_commit_bits` (`ZK_MSM_THREADS`).
const MSM_BLOCK: u32 = 256;
/// Records packed per rayon task in `commit_bits`.
const PACK_RECORDS: usize = 64;

/// Why a [`CudaEngine`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No CUDA driver library (`libcuda.so`) on this machine.
    #[error("no CUDA driver library (libcuda) found")]
    NoDriver,
    /// The driver library lacks an entry point the engine needs (a driver
    /// older than CUDA 12.2).
    #[error("the CUDA driver library is unusable (older than CUDA 12.2?)")]
    DriverUnusable,
    /// A driver call failed: no device, the PTX did not load, …
    #[error("CUDA driver call failed: {0}")]
    Driver(#[from] DriverError),
}

/// The kernels of `cuda/kernels.cu`.
struct Kernels {
    decode_windows: CudaFunction,
    build_tables: CudaFunction,
    msm: CudaFunction,
    commit_bits: CudaFunction,
    encode: CudaFunction,
}

/// One shape's tables on the device, `bases · layout.entries_per_base()`
/// `zk_niels`.
struct ShapeTable {
    bases: usize,
    entries: CudaSlice<u8>,
}

/// Per-call buffers, kept and grown so that a call allocates nothing.
/// `commit_bits` zeroes what it used of `staging`, `scalars` and `sums`
/// before it returns.
struct Io {
    /// The scalars (or `commit_bits`' records), packed on the host:
    /// pinned, write-combined memory, so the upload runs at full bus speed.
    staging: PinnedHostSlice<u8>,
    scalars: CudaSlice<u8>,
    /// Row capacity of `sums` (`zk_p3` each) and `out` (32 bytes each).
    rows: usize,
    sums: CudaSlice<u8>,
    out: CudaSlice<u8>,
}

impl Io {
    /// Buffers for `bytes` bytes of scalars and `rows` rows.
    #[allow(unsafe_code)]
    fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>, bytes: usize, rows: usize) -> Result<Self, DriverError> {
        // SAFETY: the pinned memory starts uninitialised; `run_msm` writes
        // the prefix it uploads before uploading it and never reads it.
        // Write-combined: on an H100 host the upload from cached pinned
        // memory measured 2.5 to 4 times slower (the DMA snoops the CPU
        // caches the packing just dirtied), more than packing gains.
        let staging = unsafe { ctx.alloc_pinned::<u8>(bytes) }?;
        Ok(Self {
            staging,
            scalars: stream.alloc_zeros(bytes)?,
            rows,
            sums: stream.alloc_zeros(rows * P3_BYTES)?,
            out: stream.alloc_zeros(rows * 32)?,
        })
    }

    /// Grows the buffers to hold at least `bytes` and `rows`.
    fn reserve(&mut self, ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>, bytes: usize, rows: usize) -> Result<(), DriverError> {
        if self.staging.len() < bytes || self.rows < rows {
            *self = Self::new(ctx, stream, bytes.max(self.staging.len()), rows.max(self.rows))?;
        }
        Ok(())
    }
}

/// What the engine's stream works on, behind one lock: calls are
/// serialised (the device is one resource; callers batch proofs into rows).
struct State {
    /// `msm_public`'s tables ([`TableLayout::PUBLIC`]) by [`ShapeBases::key`].
    tables: BTreeMap<(usize, usize), ShapeTable>,
    /// `commit_bits`' tables ([`TableLayout::SECRET`]) by [`ShapeBases::key`].
    secret_tables: BTreeMap<(usize, usize), ShapeTable>,
    io: Io,
}

/// Where one [`CudaEngine::msm_profiled`] call spent its time, measured
/// on the host with the stream synchronised between phases.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsmProfile {
    /// Building the shape's tables (zero once they are cached).
    pub tables: Duration,
    /// Packing the scalars into pinned host memory.
    pub pack: Duration,
    /// Copying them to the device.
    pub upload: Duration,
    /// The `zk_msm` kernel.
    pub msm: Duration,
    /// The `zk_encode` kernel and the copy of the encodings back.
    pub encode: Duration,
}

/// Time spent inside a [`CudaEngine`]'s [`GroupEngine`] calls since it
/// started: wall time from entry to return of each call (waiting for the
/// engine's lock included), summed, and the number of calls, failed ones
/// included. Difference two snapshots to time a stretch of work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineProfile {
    /// [`GroupEngine::msm_public`] calls.
    pub msm_calls: u64,
    /// Their summed wall time.
    pub msm_time: Duration,
    /// [`GroupEngine::commit_bits`] calls.
    pub bits_calls: u64,
    /// Their summed wall time.
    pub bits_time: Duration,
}

/// A [`GroupEngine`] on one CUDA device. Tables are built on the device
/// the first time a shape is used and kept for the engine's lifetime:
/// public ones for `msm_public` (512 KiB per base: 66 MiB for `(64, 1)`,
/// 1 GiB for `(64, 16)`) and secret ones for `commit_bits` (64 KiB per
/// base: 8 MiB for `(64, 1)`, 128 MiB for `(64, 16)`).
pub struct CudaEngine {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    device_name: String,
    state: Mutex<State>,
    profile: Mutex<EngineProfile>,
}

impl CudaEngine {
    /// An engine on device 0.
    pub fn new() -> Result<Self, EngineError> {
        Self::on_device(0)
    }

    /// An engine on device `ordinal`. Fails, without panicking, where
    /// there is no driver, no such device, or the PTX does not load.
    pub fn on_device(ordinal: usize) -> Result<Self, EngineError> {
        if !driver_present() {
            return Err(EngineError::NoDriver);
        }
        // cudarc panics when a driver entry point is missing; keep that an error.
        catch_unwind(AssertUnwindSafe(|| Self::start(ordinal))).unwrap_or(Err(EngineError::DriverUnusable))
    }

    fn start(ordinal: usize) -> Result<Self, EngineError> {
        let ctx = CudaContext::new(ordinal)?;
        let device_name = ctx.name()?;
        let module = ctx.load_module(Ptx::from_src(PTX))?;
        let kernels = Kernels {
            decode_windows: module.load_function("zk_decode_windows")?,
            build_tables: module.load_function("zk_build_tables")?,
            msm: module.load_function("zk_msm")?,
            commit_bits: module.load_function("zk_commit_bits")?,
            encode: module.load_function("zk_encode")?,
        };
        let stream = ctx.default_stream();
        // Room for 512 rows of (64, 1) to start with.
        let io = Io::new(&ctx, &stream, 512 * 129 * 32, 512)?;
        let state = Mutex::new(State { tables: BTreeMap::new(), secret_tables: BTreeMap::new(), io });
        Ok(Self { ctx, stream, kernels, device_name, state, profile: Mutex::default() })
    }

    /// The device's name, for reports (`NVIDIA H100 80GB HBM3`).
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Builds the public and secret tables of `bases`' shape now rather
    /// than on first use.
    pub fn prepare(&self, bases: &ShapeBases) -> Result<(), BackendFailure> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { tables, secret_tables, .. } = &mut *state;
        self.ensure_table(tables, bases.key(), TableLayout::PUBLIC, || bases.compressed().to_vec())?;
        self.ensure_table(secret_tables, bases.key(), TableLayout::SECRET, || secret_bases(bases))?;
        Ok(())
    }

    /// The time spent in this engine's [`GroupEngine`] calls so far.
    pub fn profile(&self) -> EngineProfile {
        *self.profile.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one call that started at `start` to the profile.
    fn record(&self, start: Instant, field: fn(&mut EngineProfile) -> (&mut u64, &mut Duration)) {
        let elapsed = start.elapsed();
        let mut profile = self.profile.lock().unwrap_or_else(PoisonError::into_inner);
        let (calls, time) = field(&mut profile);
        *calls += 1;
        *time += elapsed;
    }

    /// [`GroupEngine::msm_public`], timing each phase.
    pub fn msm_profiled(&self, bases: &ShapeBases, scalars: &[Scalar]) -> Result<(Vec<CompressedRistretto>, MsmProfile), BackendFailure> {
        let mut profile = MsmProfile::default();
        let out = self.msm(bases, scalars, Some(&mut profile))?;
        Ok((out, profile))
    }

    fn msm(
        &self,
        bases: &ShapeBases,
        scalars: &[Scalar],
        mut profile: Option<&mut MsmProfile>,
    ) -> Result<Vec<CompressedRistretto>, BackendFailure> {
        let width = bases.len();
        if width == 0 || scalars.len() % width != 0 {
            return Err(BackendFailure::Shape);
        }
        let rows = scalars.len() / width;
        if rows == 0 {
            return Ok(Vec::new());
        }
        let rows = u32::try_from(rows).map_err(|_| BackendFailure::Shape)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { tables, io, .. } = &mut *state;
        let t = Instant::now();
        let table = self.ensure_table(tables, bases.key(), TableLayout::PUBLIC, || bases.compressed().to_vec())?;
        // The kernel reads `table.bases` scalars a row: they must be this many.
        if table.bases != width {
            return Err(BackendFailure::Shape);
        }
        if let Some(p) = profile.as_deref_mut() {
            p.tables = t.elapsed();
        }
        let out = self.run_msm(table, io, scalars, rows, profile).map_err(device)?;
        drop(state);
        Ok(out.chunks_exact(32).map(compressed).collect())
    }

    /// The table of shape `key` in `layout`, built from `bases()` if
    /// `tables` does not hold it yet.
    fn ensure_table<'t>(
        &self,
        tables: &'t mut BTreeMap<(usize, usize), ShapeTable>,
        key: (usize, usize),
        layout: TableLayout,
        bases: impl FnOnce() -> Vec<CompressedRistretto>,
    ) -> Result<&'t ShapeTable, BackendFailure> {
        let slot = match tables.entry(key) {
            Entry::Occupied(e) => return Ok(e.into_mut()),
            Entry::Vacant(v) => v,
        };
        let bases = bases();
        // The kernels index bases and windows with u32.
        let n = u32::try_from(bases.len()).map_err(|_| BackendFailure::Shape)?;
        n.checked_mul(layout.windows as u32).ok_or(BackendFailure::Shape)?;
        // `None`: a base did not decode on the device. The bases are valid
        // points, so the device computed garbage.
        let built = self.build_table(&bases, layout).map_err(device)?.ok_or(BackendFailure::Device)?;
        Ok(slot.insert(built))
    }

    /// Decodes the bases, computes their window bases, then the tables in
    /// chunks of at most [`BUILD_CHUNK_ENTRIES`] entries.
    /// `bases.len() · layout.windows` fits a `u32`.
    #[allow(unsafe_code)]
    fn build_table(&self, bases: &[CompressedRistretto], layout: TableLayout) -> Result<Option<ShapeTable>, DriverError> {
        let n = bases.len();
        let window_count = n * layout.windows;
        let s = &self.stream;
        let compressed: Vec<u8> = bases.iter().flat_map(|b| b.0).collect();
        let compressed = s.clone_htod(&compressed)?;
        let mut windows = s.alloc_zeros::<u8>(window_count * P3_BYTES)?;
        let mut bad = s.alloc_zeros::<u32>(1)?;
        let (n32, windows32, log_radix, entries32) = (n as u32, layout.windows as u32, layout.log_radix, layout.entries as u32);
        let mut launch = s.launch_builder(&self.kernels.decode_windows);
        launch.arg(&compressed).arg(&n32).arg(&windows32).arg(&log_radix).arg(&mut windows).arg(&mut bad);
        // SAFETY: zk_decode_windows(const uint8_t *compressed, uint32_t n,
        // uint32_t windows, uint32_t log_radix, zk_p3 *out, uint32_t *bad):
        // `compressed` holds n · 32 bytes, `windows` n · layout.windows
        // zk_p3, `bad` one u32; threads past n return.
        unsafe { launch.launch(grid(n32, SMALL_BLOCK)) }?;
        if s.clone_dtoh(&bad)?.first() != Some(&0) {
            return Ok(None);
        }

        let mut entries = s.alloc_zeros::<u8>(window_count * layout.entries * NIELS_BYTES)?;
        let chunk = window_count.min(BUILD_CHUNK_ENTRIES / layout.entries);
        let mut scratch = s.alloc_zeros::<u8>(chunk * layout.entries * SCRATCH_BYTES)?;
        for first in (0..window_count).step_by(chunk) {
            let (first32, count32) = (first as u32, chunk.min(window_count - first) as u32);
            let mut launch = s.launch_builder(&self.kernels.build_tables);
            launch.arg(&windows).arg(&first32).arg(&count32).arg(&entries32).arg(&mut scratch).arg(&mut entries);
            // SAFETY: zk_build_tables(const zk_p3 *windows, uint32_t first,
            // uint32_t count, uint32_t entries, zk_scratch *scratch,
            // zk_niels *table): windows first .. first + count exist in
            // `windows`, `scratch` holds chunk ≥ count · entries entries,
            // `entries` all windows' entries.
            unsafe { launch.launch(grid(count32, SMALL_BLOCK)) }?;
        }
        s.synchronize()?;
        Ok(Some(ShapeTable { bases: n, entries }))
    }

    /// Packs, uploads, runs both kernels and downloads the encodings.
    /// With a profile, synchronises after each phase to time it.
    #[allow(unsafe_code)]
    fn run_msm(
        &self,
        table: &ShapeTable,
        io: &mut Io,
        scalars: &[Scalar],
        rows: u32,
        mut profile: Option<&mut MsmProfile>,
    ) -> Result<Vec<u8>, DriverError> {
        let s = &self.stream;
        let bytes = scalars.len() * 32;
        io.reserve(&self.ctx, s, bytes, rows as usize)?;
        let phase = |p: Option<&mut MsmProfile>, t: &mut Instant, f: fn(&mut MsmProfile) -> &mut Duration| {
            if let Some(p) = p {
                s.synchronize()?;
                *f(p) = t.elapsed();
                *t = Instant::now();
            }
            Ok::<(), DriverError>(())
        };
        let mut t = Instant::now();

        // The previous call synchronised before returning: nothing reads
        // the staging buffer now.
        let staging = io.staging.as_mut_slice()?;
        staging[..bytes].par_chunks_mut(PACK_CHUNK * 32).zip(scalars.par_chunks(PACK_CHUNK)).for_each(|(dst, src)| {
            for (d, x) in dst.chunks_exact_mut(32).zip(src) {
                d.copy_from_slice(x.as_bytes());
            }
        });
        phase(profile.as_deref_mut(), &mut t, |p| &mut p.pack)?;
        s.memcpy_htod(&io.staging.as_slice()?[..bytes], &mut io.scalars.slice_mut(..bytes))?;
        phase(profile.as_deref_mut(), &mut t, |p| &mut p.upload)?;

        // Fits: the table was built with a u32 base count.
        let n32 = table.bases as u32;
        let mut launch = s.launch_builder(&self.kernels.msm);
        launch.arg(&table.entries).arg(&n32).arg(&io.scalars).arg(&rows).arg(&mut io.sums);
        let cfg = LaunchConfig { grid_dim: (rows, 1, 1), block_dim: (MSM_BLOCK, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: zk_msm(const zk_niels *table, uint32_t n, const uint8_t
        // *scalars, uint32_t rows, zk_p3 *sums): `table` is the table of n
        // bases, `scalars` starts with rows · n canonical 32-byte scalars
        // (the caller checked the row width is n; a Scalar is always
        // reduced), `sums` holds ≥ rows zk_p3; one block per row, of the 256
        // threads its shared memory is sized for.
        unsafe { launch.launch(cfg) }?;
        phase(profile.as_deref_mut(), &mut t, |p| &mut p.msm)?;

        let mut launch = s.launch_builder(&self.kernels.encode);
        launch.arg(&io.sums).arg(&rows).arg(&mut io.out);
        // SAFETY: zk_encode(const zk_p3 *sums, uint32_t rows, uint8_t *out):
        // `sums` holds ≥ rows zk_p3, `out` ≥ rows · 32 bytes; threads past
        // rows return.
        unsafe { launch.launch(grid(rows, SMALL_BLOCK)) }?;
        let out = s.clone_dtoh(&io.out.slice(..rows as usize * 32))?;
        // Nothing may still read the staging buffer when the lock is released.
        s.synchronize()?;
        phase(profile, &mut t, |p| &mut p.encode)?;
        Ok(out)
    }

    /// [`GroupEngine::commit_bits`]: checks the secrets against the shape,
    /// runs the secret path, and zeroes the buffers that held secrets
    /// whether it succeeded or not.
    fn commit_bits_on_device(
        &self,
        shape: &ShapeBases,
        secrets: &[BitSecrets<'_>],
    ) -> Result<Vec<[CompressedRistretto; 2]>, BackendFailure> {
        let records = Records::new(shape, secrets)?;
        if secrets.is_empty() {
            return Ok(Vec::new());
        }
        // Two sums a proof, encoded as rows.
        let rows = secrets.len().checked_mul(2).and_then(|r| u32::try_from(r).ok()).ok_or(BackendFailure::Shape)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { secret_tables, io, .. } = &mut *state;
        let table = self.ensure_table(secret_tables, shape.key(), TableLayout::SECRET, || secret_bases(shape))?;
        // The kernel reads 2N + 1 bases' tables.
        if table.bases != 2 * shape.n() + 1 {
            return Err(BackendFailure::Shape);
        }
        let out = self.run_commit_bits(table, io, &records, secrets, rows);
        let wiped = self.wipe(io, records.bytes(), rows as usize);
        let out = out.and_then(|out| wiped.map(|()| out)).map_err(device)?;
        drop(state);
        Ok(out.chunks_exact(64).map(|c| [compressed(&c[..32]), compressed(&c[32..])]).collect())
    }

    /// Packs the records, uploads them, runs `zk_commit_bits` and
    /// `zk_encode`, and downloads `[A, S]` of every proof (64 bytes each).
    #[allow(unsafe_code)]
    fn run_commit_bits(
        &self,
        table: &ShapeTable,
        io: &mut Io,
        records: &Records,
        secrets: &[BitSecrets<'_>],
        rows: u32,
    ) -> Result<Vec<u8>, DriverError> {
        let s = &self.stream;
        let bytes = records.bytes();
        io.reserve(&self.ctx, s, bytes, rows as usize)?;
        // The previous call synchronised before returning: nothing reads
        // the staging buffer now.
        let staging = io.staging.as_mut_slice()?;
        staging[..bytes].par_chunks_mut(records.record * PACK_RECORDS).zip(secrets.par_chunks(PACK_RECORDS)).for_each(|(dst, src)| {
            for (d, x) in dst.chunks_exact_mut(records.record).zip(src) {
                records.pack(d, x);
            }
        });
        s.memcpy_htod(&io.staging.as_slice()?[..bytes], &mut io.scalars.slice_mut(..bytes))?;

        // Fit: `Records::new` checked them.
        let (record32, proofs) = (records.record as u32, rows / 2);
        let mut launch = s.launch_builder(&self.kernels.commit_bits);
        launch.arg(&table.entries).arg(&records.bits).arg(&records.parties).arg(&io.scalars).arg(&record32).arg(&proofs).arg(&mut io.sums);
        let cfg = LaunchConfig { grid_dim: (proofs, 1, 1), block_dim: (MSM_BLOCK, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: zk_commit_bits(const zk_niels *table, uint32_t bits,
        // uint32_t parties, const uint8_t *records, uint32_t record,
        // uint32_t proofs, zk_p3 *sums): `table` is the secret table of the
        // 2N + 1 bases (the caller checked), N = bits · parties; `io.scalars`
        // starts with `proofs` records of `record` bytes laid out by
        // `Records` (canonical scalars: a Scalar is always reduced); `sums`
        // holds ≥ rows = 2 · proofs zk_p3; one block per proof, of the 256
        // threads its shared memory is sized for.
        unsafe { launch.launch(cfg) }?;

        let mut launch = s.launch_builder(&self.kernels.encode);
        launch.arg(&io.sums).arg(&rows).arg(&mut io.out);
        // SAFETY: as in `run_msm`: `sums` holds ≥ rows zk_p3, `out` ≥ rows
        // · 32 bytes; threads past rows return.
        unsafe { launch.launch(grid(rows, SMALL_BLOCK)) }?;
        let out = s.clone_dtoh(&io.out.slice(..rows as usize * 32))?;
        s.synchronize()?;
        Ok(out)
    }

    /// Zeroes the first `bytes` of the staging and upload buffers and the
    /// first `rows` sums (the records and the unencoded `A`, `S`), on the
    /// host and on the device, and waits for it. Every step is tried even
    /// if one fails; the first error is returned.
    fn wipe(&self, io: &mut Io, bytes: usize, rows: usize) -> Result<(), DriverError> {
        let s = &self.stream;
        // The upload may still read the staging buffer after a failure: wait for it.
        let synced = s.synchronize();
        let staging = io.staging.as_mut_slice().map(|staging| {
            let len = bytes.min(staging.len());
            staging[..len].par_chunks_mut(1 << 16).for_each(Zeroize::zeroize);
        });
        let bytes = bytes.min(io.scalars.len());
        let scalars = s.memset_zeros(&mut io.scalars.slice_mut(..bytes));
        let sums_len = (rows * P3_BYTES).min(io.sums.len());
        let sums = s.memset_zeros(&mut io.sums.slice_mut(..sums_len));
        let done = s.synchronize();
        synced.and(staging).and(scalars).and(sums).and(done)
    }
}

impl GroupEngine for CudaEngine {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn msm_public(&self, bases: &ShapeBases, scalars: &[Scalar]) -> Result<Vec<CompressedRistretto>, BackendFailure> {
        let start = Instant::now();
        let out = self.msm(bases, scalars, None);
        self.record(start, |p| (&mut p.msm_calls, &mut p.msm_time));
        out
    }

    /// On the device, in constant time: see the crate docs' "Secret path".
    fn commit_bits(&self, shape: &ShapeBases, secrets: &[BitSecrets<'_>]) -> Result<Vec<[CompressedRistretto; 2]>, BackendFailure> {
        let start = Instant::now();
        let out = self.commit_bits_on_device(shape, secrets);
        self.record(start, |p| (&mut p.bits_calls, &mut p.bits_time));
        out
    }
}

impl fmt::Debug for CudaEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes: Vec<_> = self.state.lock().unwrap_or_else(PoisonError::into_inner).tables.keys().copied().collect();
        f.debug_struct("CudaEngine").field("device", &self.device_name).field("shapes", &shapes).finish()
    }
}

fn grid(threads: u32, block: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (threads.div_ceil(block), 1, 1), block_dim: (block, 1, 1), shared_mem_bytes: 0 }
}

fn device(_: DriverError) -> BackendFailure {
    BackendFailure::Device
}

#[allow(unsafe_code)]
fn driver_present() -> bool {
    // SAFETY: only tries to dlopen libcuda by its usual names; no driver
    // function is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// A [`CudaEngine`] for the public round multiplications only: `A` and `S`
/// stay on the CPU (the trait's default, constant-time `commit_bits`), so
/// no secret reaches the GPU (`--prover-gpu-secrets false`).
#[derive(Debug)]
pub struct PublicOnly(Arc<CudaEngine>);

impl PublicOnly {
    /// Wraps `engine`.
    pub fn new(engine: Arc<CudaEngine>) -> Self {
        Self(engine)
    }
}

impl GroupEngine for PublicOnly {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn msm_public(&self, bases: &ShapeBases, scalars: &[Scalar]) -> Result<Vec<CompressedRistretto>, BackendFailure> {
        self.0.msm_public(bases, scalars)
    }
}
