/*
 * The curve arithmetic of curve25519.cuh compiled for the host, behind a
 * small C ABI for src/host.rs: the tests compare it with curve25519-dalek
 * without a GPU, and the table and constant-time code is the one the
 * kernels run.
 */
#include <stddef.h>
#include <stdint.h>

#include "ct_fixed_base.cuh"

_Static_assert(sizeof(zk_fe) == 40, "zk_fe is ten int32 limbs");
_Static_assert(sizeof(zk_p3) == 160, "zk_p3 is four field elements");
_Static_assert(sizeof(zk_niels) == 128, "zk_niels is padded to 128 bytes");
_Static_assert(sizeof(zk_scratch) == 160, "zk_scratch is four field elements");

int zk_host_decode(zk_p3 *out, const uint8_t bytes[32]) { return zk_ristretto_decode(out, bytes); }

void zk_host_encode(uint8_t out[32], const zk_p3 *p) { zk_ristretto_encode(out, p); }

void zk_host_identity(zk_p3 *out) { zk_p3_identity(out); }

void zk_host_add(zk_p3 *out, const zk_p3 *p, const zk_p3 *q) { zk_p3_add(out, p, q); }

void zk_host_double(zk_p3 *out, const zk_p3 *p) { zk_p3_dbl(out, p); }

void zk_host_neg(zk_p3 *out, const zk_p3 *p) { zk_p3_neg(out, p); }

/* The same point with every coordinate multiplied by lambda. */
void zk_host_scale_coordinates(zk_p3 *out, const zk_p3 *p, const uint8_t lambda[32]) {
    zk_fe l;
    zk_fe_frombytes(&l, lambda);
    zk_fe_mul(&out->X, &p->X, &l);
    zk_fe_mul(&out->Y, &p->Y, &l);
    zk_fe_mul(&out->Z, &p->Z, &l);
    zk_fe_mul(&out->T, &p->T, &l);
}

/* The same point with Z = 1, through one field inversion. */
void zk_host_normalize(zk_p3 *out, const zk_p3 *p) {
    zk_fe zinv;
    zk_fe_invert(&zinv, &p->Z);
    zk_fe_mul(&out->X, &p->X, &zinv);
    zk_fe_mul(&out->Y, &p->Y, &zinv);
    zk_fe_mul(&out->Z, &p->Z, &zinv);
    zk_fe_mul(&out->T, &p->T, &zinv);
}

/* Canonical encodings of X, Y, Z and T, in that order. */
void zk_host_coordinates(uint8_t out[128], const zk_p3 *p) {
    zk_fe_tobytes(out, &p->X);
    zk_fe_tobytes(out + 32, &p->Y);
    zk_fe_tobytes(out + 64, &p->Z);
    zk_fe_tobytes(out + 96, &p->T);
}

void zk_host_fe_mul(uint8_t out[32], const uint8_t a[32], const uint8_t b[32]) {
    zk_fe f, g;
    zk_fe_frombytes(&f, a);
    zk_fe_frombytes(&g, b);
    zk_fe_mul(&f, &f, &g);
    zk_fe_tobytes(out, &f);
}

void zk_host_fe_invert(uint8_t out[32], const uint8_t a[32]) {
    zk_fe f;
    zk_fe_frombytes(&f, a);
    zk_fe_invert(&f, &f);
    zk_fe_tobytes(out, &f);
}

/* table[(i * windows + k) * entries + j] = (j + 1) R^k bases[i], R =
 * 2^log_radix: the layout the kernels build and read (public: 32, 8, 128;
 * secret: 64, 4, 8). windows <= 64, entries <= 128. Returns 0 for a
 * layout out of those bounds. */
int zk_host_build_table(zk_niels *table, const zk_p3 *bases, size_t n, size_t windows, int log_radix,
                        size_t entries) {
    zk_p3 window_bases[ZK_CT_WINDOWS];
    zk_scratch scratch[ZK_WINDOW_ENTRIES];
    if (windows == 0 || windows > ZK_CT_WINDOWS || entries == 0 || entries > ZK_WINDOW_ENTRIES || log_radix < 1) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        zk_window_bases(window_bases, &bases[i], (int)windows, log_radix);
        for (size_t k = 0; k < windows; k++) {
            zk_table_window(table + (i * windows + k) * entries, scratch, &window_bases[k], (int)entries);
        }
    }
    return 1;
}

/* out[r] = encode(sum_i scalars[r][i] bases[i]) for canonical scalars,
 * with the recoding the kernel does with warp ballots. */
void zk_host_msm(uint8_t *out, const zk_niels *table, size_t n, const uint8_t *scalars, size_t rows) {
    for (size_t r = 0; r < rows; r++) {
        zk_p3 acc;
        zk_p3_identity(&acc);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *s = scalars + (r * n + i) * 32;
            uint32_t ge128 = 0, eq127 = 0;
            for (int k = 0; k < 32; k++) {
                ge128 |= (uint32_t)(s[k] >= 128) << k;
                eq127 |= (uint32_t)(s[k] == 127) << k;
            }
            uint32_t carries = zk_recode_carries(ge128, eq127);
            for (int k = 0; k < ZK_WINDOWS; k++) {
                int d = zk_recode_digit(s[k], (carries >> k) & 1);
                zk_acc_digit(&acc, table + (i * ZK_WINDOWS + (size_t)k) * ZK_WINDOW_ENTRIES, d);
            }
        }
        zk_ristretto_encode(out + r * 32, &acc);
    }
}

/* The signed radix-16 digits of a canonical scalar, as the secret path
 * computes them (byte carries, then two digits a byte). */
void zk_host_ct_recode(int8_t digits[64], const uint8_t s[32]) {
    uint32_t carries = zk_ct_byte_carries(s);
    for (int k = 0; k < 32; k++) {
        int lo, hi;
        zk_ct_recode_byte(&lo, &hi, s[k], (carries >> k) & 1u);
        digits[2 * k] = (int8_t)lo;
        digits[2 * k + 1] = (int8_t)hi;
    }
}

/* out = d Q through zk_ct_select, window[j] = (j + 1) Q, d in [-8, 8]. */
void zk_host_ct_select(zk_p3 *out, const zk_niels *window, int d) {
    zk_niels e;
    zk_ct_select(&e, window, d);
    zk_p3_identity(out);
    zk_p3_add_niels(out, &e);
}

/* out = s P for P's secret table and a canonical scalar s. */
void zk_host_ct_mul(zk_p3 *out, const zk_niels *table, const uint8_t s[32]) {
    zk_p3_identity(out);
    zk_ct_acc_scalar(out, table, s);
}

/* The zk_commit_bits kernel's sums, one proof at a time, encoded:
 * out[64 p .. 64 p + 31] = A, out[64 p + 32 ..] = S of proof p, over the
 * secret tables of G_0 .. G_{N-1}, H_0 .. H_{N-1}, B~ and the records
 * laid out as the kernel reads them. */
void zk_host_commit_bits(uint8_t *out, const zk_niels *table, uint32_t bits, uint32_t parties,
                         const uint8_t *records, size_t record, size_t proofs) {
    const size_t n = (size_t)bits * parties;
    const size_t base_entries = (size_t)ZK_CT_WINDOWS * ZK_CT_ENTRIES;
    for (size_t p = 0; p < proofs; p++) {
        const uint8_t *scalars = records + p * record;
        const uint8_t *values = scalars + (2 * n + 2) * 32;
        zk_p3 a, s;
        zk_p3_identity(&s);
        for (size_t i = 0; i < 2 * n + 1; i++) zk_ct_acc_scalar(&s, table + i * base_entries, scalars + i * 32);
        zk_p3_identity(&a);
        zk_ct_acc_scalar(&a, table + 2 * n * base_entries, scalars + (2 * n + 1) * 32);
        for (size_t i = 0; i < n; i++) {
            zk_ct_acc_bit(&a, table + i * base_entries, table + (n + i) * base_entries,
                          zk_ct_value_bit(values, (uint32_t)i, bits));
        }
        zk_ristretto_encode(out + 64 * p, &a);
        zk_ristretto_encode(out + 64 * p + 32, &s);
    }
}
