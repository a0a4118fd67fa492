/*
 * Kernels of the CUDA group engine (src/cuda.rs launches them by these
 * extern "C" names; change a signature there and here together).
 *
 * Per shape and table layout (public radix 256 or secret radix 16), once:
 *   zk_decode_windows  one thread per base: Ristretto-decode it and write
 *                      its window bases R^k P.
 *   zk_build_tables    one thread per (base, window): the affine Niels
 *                      multiples of the window base, one batched inversion.
 * Per msm_public call (public scalars, variable time):
 *   zk_msm             one block per row, eight warps; warp w takes the
 *                      bases i = w (mod 8) and lane k the k-th signed
 *                      radix-256 digit of each scalar, so a zero scalar is
 *                      skipped by the whole warp at once and the 32 lanes
 *                      read 32 different windows of the same base. The
 *                      256 partial sums are added in shared memory.
 * Per commit_bits call (secret scalars and bits, constant time):
 *   zk_commit_bits     one block per proof, eight warps: S term by term as
 *                      in zk_msm but over the secret tables, lane k taking
 *                      the two radix-16 digits of byte k by masked
 *                      selection; then A, one selection G_i / -H_i per
 *                      thread plus a B~ by warp 0. No zero is skipped.
 * Both:
 *   zk_encode          one thread per row: Ristretto-encode the row sums.
 */
#include "ct_fixed_base.cuh"

#define ZK_MSM_WARPS 8
#define ZK_MSM_THREADS (ZK_MSM_WARPS * 32)
#define ZK_FULL_MASK 0xffffffffu

/* One thread per base (n of them): decode it and write its `windows`
 * window bases R^k P, R = 2^log_radix; `bad` counts bases that do not
 * decode. */
extern "C" __global__ void zk_decode_windows(const uint8_t *__restrict__ compressed, uint32_t n, uint32_t windows,
                                             uint32_t log_radix, zk_p3 *__restrict__ out, uint32_t *__restrict__ bad) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    zk_p3 p;
    if (!zk_ristretto_decode(&p, compressed + (size_t)i * 32)) {
        atomicAdd(bad, 1u);
        zk_p3_identity(&p);
    }
    zk_window_bases(out + (size_t)i * windows, &p, (int)windows, (int)log_radix);
}

/* Windows first .. first + count - 1 (window index = base * windows + k),
 * `entries` each; scratch holds count * entries entries. */
extern "C" __global__ void zk_build_tables(const zk_p3 *__restrict__ windows, uint32_t first, uint32_t count,
                                           uint32_t entries, zk_scratch *__restrict__ scratch,
                                           zk_niels *__restrict__ table) {
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) return;
    size_t w = (size_t)first + t;
    zk_table_window(table + w * entries, scratch + (size_t)t * entries, &windows[w], (int)entries);
}

/* The sum of every thread's `acc` over a block of ZK_MSM_THREADS threads,
 * in thread 0's `acc`: a fixed tree in shared memory `partial` (one zk_p3
 * a thread), the same additions whatever the values. Every thread of the
 * block must call it. */
static __device__ __forceinline__ void zk_block_sum(zk_p3 *partial, zk_p3 *acc) {
    partial[threadIdx.x] = *acc;
    __syncthreads();
    for (uint32_t s = ZK_MSM_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            zk_p3 other = partial[threadIdx.x + s];
            zk_p3_add(acc, acc, &other);
            partial[threadIdx.x] = *acc;
        }
        __syncthreads();
    }
}

/* sums[r] = sum_i scalars[r][i] bases[i]; launch with `rows` blocks of
 * ZK_MSM_THREADS threads. Scalars must be canonical (below 2^253). */
/* At most 128 registers a thread, so that two blocks share an SM: ptxas
 * (12.2, sm_90) then spills 8 bytes; unbounded it takes 146 registers and
 * only one 256-thread block fits. */
extern "C" __global__ void __launch_bounds__(ZK_MSM_THREADS, 2)
    zk_msm(const zk_niels *__restrict__ table, uint32_t n, const uint8_t *__restrict__ scalars, uint32_t rows,
           zk_p3 *__restrict__ sums) {
    __shared__ zk_p3 partial[ZK_MSM_THREADS];
    const uint32_t row = blockIdx.x;
    const uint32_t lane = threadIdx.x & 31;
    const uint32_t warp = threadIdx.x >> 5;
    if (row >= rows) return; /* whole block: the barriers below stay uniform */

    zk_p3 acc;
    zk_p3_identity(&acc);
    const uint8_t *row_scalars = scalars + (size_t)row * n * 32;
    for (uint32_t i = warp; i < n; i += ZK_MSM_WARPS) {
        uint32_t byte = row_scalars[(size_t)i * 32 + lane];
        if (__ballot_sync(ZK_FULL_MASK, byte != 0) == 0) continue;
        uint32_t ge128 = __ballot_sync(ZK_FULL_MASK, byte >= 128);
        uint32_t eq127 = __ballot_sync(ZK_FULL_MASK, byte == 127);
        uint32_t carry = (zk_recode_carries(ge128, eq127) >> lane) & 1;
        int d = zk_recode_digit(byte, carry);
        zk_acc_digit(&acc, table + ((size_t)i * ZK_WINDOWS + lane) * ZK_WINDOW_ENTRIES, d);
    }

    zk_block_sum(partial, &acc);
    if (threadIdx.x == 0) sums[row] = acc;
}

/* acc += s P, the warp's 32 lanes together (lane k: byte k, windows 2k and
 * 2k + 1), for a canonical secret scalar s and P's secret table. The
 * ballots carry the masks of zk_ct_byte_carries; nothing branches on s and
 * every lane loads its windows' 16 entries whatever the digits. */
static __device__ __forceinline__ void zk_ct_acc_scalar_warp(zk_p3 *acc, const zk_niels *table, const uint8_t *s,
                                                             uint32_t lane) {
    uint32_t byte = s[lane];
    uint32_t gen = __ballot_sync(ZK_FULL_MASK, zk_ct_byte_generates(byte));
    uint32_t prop = __ballot_sync(ZK_FULL_MASK, zk_ct_byte_propagates(byte));
    uint32_t carry = (zk_recode_carries(gen, prop) >> lane) & 1u;
    zk_ct_acc_byte(acc, table + (size_t)lane * 2 * ZK_CT_ENTRIES, byte, carry);
}

/* For each proof p (one block of ZK_MSM_THREADS threads each):
 *   sums[2p]     = A = a B~ + sum_{i<N} (bit_i ? G_i : -H_i)
 *   sums[2p + 1] = S = s B~ + sum_i sL_i G_i + sum_i sR_i H_i
 * over the secret tables of the 2N + 1 bases G_0 .. G_{N-1}, H_0 ..
 * H_{N-1}, B~ (64 windows of 8 entries each), N = bits * parties. Proof
 * p's record, `record` bytes from p * record: 2N + 2 canonical scalars
 * (sL_0 .. sL_{N-1}, sR_0 .. sR_{N-1}, s, a) of 32 bytes, then the
 * `parties` values as little-endian u64. Loops and addresses depend on the
 * shape and the thread only; the shared partial sums are zeroed before
 * the block exits. */
extern "C" __global__ void __launch_bounds__(ZK_MSM_THREADS, 2)
    zk_commit_bits(const zk_niels *__restrict__ table, uint32_t bits, uint32_t parties,
                   const uint8_t *__restrict__ records, uint32_t record, uint32_t proofs, zk_p3 *__restrict__ sums) {
    __shared__ zk_p3 partial[ZK_MSM_THREADS];
    const uint32_t proof = blockIdx.x;
    const uint32_t lane = threadIdx.x & 31;
    const uint32_t warp = threadIdx.x >> 5;
    if (proof >= proofs) return; /* whole block: the barriers below stay uniform */

    const uint32_t n = bits * parties;
    const size_t base_entries = (size_t)ZK_CT_WINDOWS * ZK_CT_ENTRIES;
    const uint8_t *scalars = records + (size_t)proof * record;
    const uint8_t *values = scalars + (size_t)(2 * n + 2) * 32;

    zk_p3 acc;
    zk_p3_identity(&acc);
    for (uint32_t i = warp; i < 2 * n + 1; i += ZK_MSM_WARPS) {
        zk_ct_acc_scalar_warp(&acc, table + i * base_entries, scalars + (size_t)i * 32, lane);
    }
    zk_block_sum(partial, &acc);
    if (threadIdx.x == 0) sums[2 * (size_t)proof + 1] = acc;

    zk_p3_identity(&acc);
    if (warp == 0) {
        zk_ct_acc_scalar_warp(&acc, table + 2 * n * base_entries, scalars + (size_t)(2 * n + 1) * 32, lane);
    }
    for (uint32_t i = threadIdx.x; i < n; i += ZK_MSM_THREADS) {
        zk_ct_acc_bit(&acc, table + i * base_entries, table + (n + i) * base_entries,
                      zk_ct_value_bit(values, i, bits));
    }
    zk_block_sum(partial, &acc);
    if (threadIdx.x == 0) sums[2 * (size_t)proof] = acc;

    /* Every read of `partial` is behind the last barrier of zk_block_sum.
     * Volatile: nothing reads these stores, and they must stay. */
    volatile int32_t *mine = (volatile int32_t *)&partial[threadIdx.x];
    for (int k = 0; k < (int)(sizeof(zk_p3) / sizeof(int32_t)); k++) mine[k] = 0;
}

/* out[r] = Ristretto encoding of sums[r], one thread per row: a separate
 * kernel so that the long, serial encoding of one row does not hold a
 * whole zk_msm block (and its SM) after the row's sum is done. */
extern "C" __global__ void zk_encode(const zk_p3 *__restrict__ sums, uint32_t rows, uint8_t *__restrict__ out) {
    uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    uint8_t s[32];
    zk_p3 p = sums[r];
    zk_ristretto_encode(s, &p);
    for (int k = 0; k < 32; k++) out[(size_t)r * 32 + k] = s[k];
}
