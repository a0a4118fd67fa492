/*
 * The curve arithmetic of curve25519.cuh compiled for the host, behind a
 * small C ABI for src/host.rs: the tests compare it with curve25519-dalek
 * without a GPU, and the table code is the one the kernels run.
 */
#include <stddef.h>
#include <stdint.h>

#include "curve25519.cuh"

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

/* table[(i * ZK_WINDOWS + k) * ZK_WINDOW_ENTRIES + j] = (j + 1) 256^k bases[i]:
 * the layout the kernels build and read. */
void zk_host_build_table(zk_niels *table, const zk_p3 *bases, size_t n) {
    zk_p3 windows[ZK_WINDOWS];
    zk_scratch scratch[ZK_WINDOW_ENTRIES];
    for (size_t i = 0; i < n; i++) {
        zk_window_bases(windows, &bases[i]);
        for (size_t k = 0; k < ZK_WINDOWS; k++) {
            zk_table_window(table + (i * ZK_WINDOWS + k) * ZK_WINDOW_ENTRIES, scratch, &windows[k]);
        }
    }
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
