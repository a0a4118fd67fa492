/*
 * Kernels of the CUDA group engine (src/cuda.rs launches them by these
 * extern "C" names; change a signature there and here together).
 *
 * Per shape, once:
 *   zk_decode_windows  one thread per base: Ristretto-decode it and write
 *                      its 32 window bases 256^k P.
 *   zk_build_tables    one thread per (base, window): the 128 affine Niels
 *                      multiples of the window base, one batched inversion.
 * Per call:
 *   zk_msm             one block per row, eight warps; warp w takes the
 *                      bases i = w (mod 8) and lane k the k-th signed
 *                      radix-256 digit of each scalar, so a zero scalar is
 *                      skipped by the whole warp at once and the 32 lanes
 *                      read 32 different windows of the same base. The
 *                      256 partial sums are added in shared memory.
 *   zk_encode          one thread per row: Ristretto-encode the row sums.
 */
#include "curve25519.cuh"

#define ZK_MSM_WARPS 8
#define ZK_MSM_THREADS (ZK_MSM_WARPS * 32)
#define ZK_FULL_MASK 0xffffffffu

extern "C" __global__ void zk_decode_windows(const uint8_t *__restrict__ compressed, uint32_t n,
                                             zk_p3 *__restrict__ windows, uint32_t *__restrict__ bad) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    zk_p3 p;
    if (!zk_ristretto_decode(&p, compressed + (size_t)i * 32)) {
        atomicAdd(bad, 1u);
        zk_p3_identity(&p);
    }
    zk_window_bases(windows + (size_t)i * ZK_WINDOWS, &p);
}

/* Windows first .. first + count - 1 (window index = base * 32 + k);
 * scratch holds count * 128 entries. */
extern "C" __global__ void zk_build_tables(const zk_p3 *__restrict__ windows, uint32_t first, uint32_t count,
                                           zk_scratch *__restrict__ scratch, zk_niels *__restrict__ table) {
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= count) return;
    size_t w = (size_t)first + t;
    zk_table_window(table + w * ZK_WINDOW_ENTRIES, scratch + (size_t)t * ZK_WINDOW_ENTRIES, &windows[w]);
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

    partial[threadIdx.x] = acc;
    __syncthreads();
    for (uint32_t s = ZK_MSM_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            zk_p3 other = partial[threadIdx.x + s];
            zk_p3_add(&acc, &acc, &other);
            partial[threadIdx.x] = acc;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[row] = acc;
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
