/*
 * Constant-time fixed-base multiplication on edwards25519 for the secret
 * path of the CUDA engine (commit_bits), written once for the GPU and the
 * host like curve25519.cuh, on which it builds. Nothing here branches on,
 * or computes an address from, a secret scalar or bit.
 */
#ifndef ZK_CT_FIXED_BASE_CUH
#define ZK_CT_FIXED_BASE_CUH

#include "curve25519.cuh"

/* The secret path multiplies secret scalars by fixed bases with no branch
 * and no memory address that depends on them (curve25519-dalek's
 * EdwardsBasepointTable, spread over a warp):
 *
 * - a scalar is recoded into 64 signed radix-16 digits d_k in [-8, 8)
 *   (the top one in [0, 2] for a canonical scalar) by arithmetic carries;
 * - window k of a base's table holds j 16^k P, j = 1 .. 8 (ZK_CT_*), and
 *   zk_ct_select loads all eight entries and keeps |d_k|'s by masks,
 *   starting from the identity so that d_k = 0 takes the same path, then
 *   negates by the sign's mask;
 * - the 64 selected points are added: a mixed addition each, no
 *   doublings, whatever the digits.
 *
 * Byte k of a scalar holds digits 2k and 2k + 1, so lane k of a warp
 * takes them (zk_ct_acc_byte) once it knows the carry into its byte. A
 * byte carries out when it is at least 0x78 (its high nibble ends at 8 or
 * more whatever comes in) and passes an incoming carry on when it is 0x77,
 * so the carries are the 32-bit addition of zk_recode_carries over those
 * two masks: ballots on the GPU, a loop on the host. */
#define ZK_CT_WINDOWS 64
#define ZK_CT_ENTRIES 8
#define ZK_CT_LOG_RADIX 4

/* 1 when a == b, else 0, by arithmetic. */
ZK_HD uint32_t zk_ct_eq(uint32_t a, uint32_t b) {
    uint32_t x = a ^ b;
    return ((x | (0u - x)) >> 31) ^ 1u;
}

/* 1 when the byte carries out whatever comes in (byte >= 0x78), else 0. */
ZK_HD uint32_t zk_ct_byte_generates(uint32_t byte) { return (byte + 0x88u) >> 8; }

/* 1 when the byte passes an incoming carry on (byte == 0x77), else 0. */
ZK_HD uint32_t zk_ct_byte_propagates(uint32_t byte) { return zk_ct_eq(byte, 0x77u); }

/* The carries into the 32 bytes of a scalar (bit k: into byte k), from
 * the bytes themselves: what the kernel gets from two ballots. */
ZK_HD uint32_t zk_ct_byte_carries(const uint8_t s[32]) {
    uint32_t gen = 0, prop = 0;
    ZK_UNROLL for (int k = 0; k < 32; k++) {
        gen |= zk_ct_byte_generates(s[k]) << k;
        prop |= zk_ct_byte_propagates(s[k]) << k;
    }
    return zk_recode_carries(gen, prop);
}

/* The two signed radix-16 digits of a byte given the carry into it:
 * byte + carry = lo + 16 hi + 256 c with lo, hi in [-8, 8), c the carry
 * out (0 for the top byte of a canonical scalar, at most 0x10, whose hi
 * is then in [0, 2]). dalek's Scalar::as_radix_16 with arithmetic shifts
 * only. */
ZK_HD void zk_ct_recode_byte(int *lo, int *hi, uint32_t byte, uint32_t carry) {
    int l = (int)(byte & 15u) + (int)carry;
    int c = (l + 8) >> 4;
    int h = (int)(byte >> 4) + c;
    *lo = l - c * 16;
    *hi = h - ((h + 8) >> 4) * 16;
}

ZK_HD void zk_niels_identity(zk_niels *q) {
    zk_fe_one(&q->ypx);
    zk_fe_one(&q->ymx);
    zk_fe_zero(&q->xy2d);
    q->pad[0] = 0;
    q->pad[1] = 0;
}

/* q = r when b = 1, unchanged when b = 0. */
ZK_HD void zk_niels_cmov(zk_niels *q, const zk_niels *r, uint32_t b) {
    zk_fe_cmov(&q->ypx, &r->ypx, (int)b);
    zk_fe_cmov(&q->ymx, &r->ymx, (int)b);
    zk_fe_cmov(&q->xy2d, &r->xy2d, (int)b);
}

/* out = d Q for d in [-8, 8], from window[j] = (j + 1) Q: every entry is
 * loaded and masked in, so neither the addresses nor the instructions
 * depend on d (dalek's LookupTable::select). Two entries an iteration:
 * fully unrolled, ptxas (12.2, sm_90) hoists all eight loads and spills
 * about 500 bytes a thread at zk_commit_bits' 128 registers; two keep it
 * near 56 bytes. */
ZK_HD void zk_ct_select(zk_niels *out, const zk_niels *window, int d) {
    uint32_t neg = (uint32_t)d >> 31;
    uint32_t abs = ((uint32_t)d ^ (0u - neg)) + neg;
    zk_niels_identity(out);
    ZK_UNROLL2 for (int j = 0; j < ZK_CT_ENTRIES; j++) {
        zk_niels e = window[j];
        zk_niels_cmov(out, &e, zk_ct_eq(abs, (uint32_t)j + 1));
    }
    zk_niels_cneg(out, (int)neg);
}

/* acc += q by a mixed addition. */
ZK_HD void zk_p3_add_niels(zk_p3 *acc, const zk_niels *q) {
    zk_p1p1 t;
    zk_add_niels(&t, acc, q);
    zk_p1p1_to_p3(acc, &t);
}

/* acc += (lo 16^(2k) + hi 16^(2k+1)) P for the digits of byte k of a
 * scalar given the carry into it, where `windows` points at window 2k of
 * P's secret table (windows 2k and 2k + 1, 16 entries). */
ZK_HD void zk_ct_acc_byte(zk_p3 *acc, const zk_niels *windows, uint32_t byte, uint32_t carry) {
    int lo, hi;
    zk_niels e;
    zk_ct_recode_byte(&lo, &hi, byte, carry);
    zk_ct_select(&e, windows, lo);
    zk_p3_add_niels(acc, &e);
    zk_ct_select(&e, windows + ZK_CT_ENTRIES, hi);
    zk_p3_add_niels(acc, &e);
}

/* acc += s P for a canonical scalar s and P's secret table, one byte (two
 * windows) at a time: what the 32 lanes of a warp do together. */
ZK_HD void zk_ct_acc_scalar(zk_p3 *acc, const zk_niels *table, const uint8_t s[32]) {
    uint32_t carries = zk_ct_byte_carries(s);
    for (int k = 0; k < 32; k++) {
        zk_ct_acc_byte(acc, table + (size_t)k * 2 * ZK_CT_ENTRIES, s[k], (carries >> k) & 1u);
    }
}

/* Bit i of the values (`bits` bits each, value-major), little-endian
 * u64 each: the address depends on i only. */
ZK_HD uint32_t zk_ct_value_bit(const uint8_t *values, uint32_t i, uint32_t bits) {
    uint32_t v = i / bits, b = i % bits;
    return ((uint32_t)values[(size_t)v * 8 + (b >> 3)] >> (b & 7u)) & 1u;
}

/* acc += bit ? G : -H for the affine Niels forms of G and H (window 0,
 * entry 0 of their secret tables): both are loaded, -H is formed, and the
 * bit's mask picks one. */
ZK_HD void zk_ct_acc_bit(zk_p3 *acc, const zk_niels *g, const zk_niels *h, uint32_t bit) {
    zk_niels e = *h, ge = *g;
    zk_niels_cneg(&e, 1);
    zk_niels_cmov(&e, &ge, bit);
    zk_p3_add_niels(acc, &e);
}

#endif /* ZK_CT_FIXED_BASE_CUH */
