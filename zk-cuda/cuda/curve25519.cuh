/*
 * Arithmetic of edwards25519 and ristretto255, written once for the GPU
 * (nvcc or NVRTC) and the host (a plain C or C++ compiler).
 *
 * Field: GF(2^255 - 19) in ref10's signed radix-2^25.5 form: ten int32
 * limbs of alternately 26 and 25 bits, products accumulated in int64, so a
 * field multiplication is 100 32x32->64 multiply-adds (one IMAD.WIDE each
 * on the GPU) and no 128-bit arithmetic is needed anywhere. Bounds follow
 * ref10: a limb fed to a multiplication is at most about 1.65 * 2^26 in
 * magnitude, which holds for any carried value and the sum or difference
 * of two carried values; longer chains are carried explicitly.
 *
 * Curve: the twisted Edwards curve -x^2 + y^2 = 1 + d x^2 y^2,
 * d = -121665/121666, in extended coordinates (X : Y : Z : T), x = X/Z,
 * y = Y/Z, xy = T/Z, with ref10's completed ("p1p1"), projective ("p2"),
 * cached and affine Niels forms.
 *
 * Ristretto255 encoding and decoding follow RFC 9496, sections 4.3.1 and
 * 4.3.2, step by step; SQRT_RATIO_M1 is section 4.2.
 *
 * The fixed-base code here (radix-256 tables, zk_acc_digit) is the public
 * path: it sees only public scalars, and branches and indexes tables by
 * digit (see src/lib.rs). The secret path, in ct_fixed_base.cuh, builds
 * on the field and point arithmetic here, which is straight-line code
 * with loops of fixed trip count and selects by masks: constant time as
 * it is.
 */
#ifndef ZK_CURVE25519_CUH
#define ZK_CURVE25519_CUH

#if defined(__CUDACC_RTC__)
/* NVRTC has no C library headers. */
typedef unsigned char uint8_t;
typedef signed char int8_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

#if defined(__CUDACC__)
#define ZK_HD static __host__ __device__ __forceinline__
/* Large routines (inversion, Ristretto): let the compiler decide. */
#define ZK_HD_BIG static __host__ __device__
#define ZK_ALIGN16 __align__(16)
#define ZK_UNROLL _Pragma("unroll")
#define ZK_UNROLL2 _Pragma("unroll 2")
#else
#define ZK_HD static inline
#define ZK_HD_BIG static inline
#define ZK_ALIGN16 __attribute__((aligned(16)))
#if defined(__clang__)
#define ZK_UNROLL _Pragma("unroll")
#define ZK_UNROLL2 _Pragma("unroll 2")
#else
#define ZK_UNROLL _Pragma("GCC unroll 16")
#define ZK_UNROLL2 _Pragma("GCC unroll 2")
#endif
#endif

/* ------------------------------------------------------------------ */
/* Field elements                                                      */
/* ------------------------------------------------------------------ */

/* Limb i holds bits [26*ceil(i/2) + 25*floor(i/2), ...) of the value. */
typedef struct {
    int32_t v[10];
} zk_fe;

ZK_HD int zk_limb_bits(int i) { return (i & 1) ? 25 : 26; }

ZK_HD void zk_fe_set(zk_fe *h, int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int32_t a5,
                     int32_t a6, int32_t a7, int32_t a8, int32_t a9) {
    h->v[0] = a0; h->v[1] = a1; h->v[2] = a2; h->v[3] = a3; h->v[4] = a4;
    h->v[5] = a5; h->v[6] = a6; h->v[7] = a7; h->v[8] = a8; h->v[9] = a9;
}

ZK_HD void zk_fe_zero(zk_fe *h) { zk_fe_set(h, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); }
ZK_HD void zk_fe_one(zk_fe *h) { zk_fe_set(h, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0); }

/* Constants, as immediates so that device code needs no constant memory.
 * Values from RFC 9496 section 4.1 / RFC 7748; the host tests check them
 * through every encoding they take part in. */

/* d = -121665/121666 */
ZK_HD void zk_fe_d(zk_fe *h) {
    zk_fe_set(h, 56195235, 13857412, 51736253, 6949390, 114729, 24766616, 60832955, 30306712, 48412415,
              21499315);
}

/* 2d */
ZK_HD void zk_fe_d2(zk_fe *h) {
    zk_fe_set(h, 45281625, 27714825, 36363642, 13898781, 229458, 15978800, 54557047, 27058993, 29715967,
              9444199);
}

/* SQRT_M1 = 1968116137670750595680707930498854201544606651592389016274402
 * 1073123829784752, the non-negative square root of -1. */
ZK_HD void zk_fe_sqrt_m1(zk_fe *h) {
    zk_fe_set(h, 34513072, 25610706, 9377949, 3500415, 12389472, 33281959, 41962654, 31548777, 326685,
              11406482);
}

/* INVSQRT_A_MINUS_D = 544693070089093169209958138687451416053935972929274
 * 56921205312896311721017578 = 1/sqrt(a - d), a = -1. */
ZK_HD void zk_fe_invsqrt_a_minus_d(zk_fe *h) {
    zk_fe_set(h, 6111466, 4156064, 39310137, 12243467, 41204824, 120896, 20826367, 26493656, 6093567,
              31568420);
}

ZK_HD void zk_fe_add(zk_fe *h, const zk_fe *f, const zk_fe *g) {
    ZK_UNROLL for (int i = 0; i < 10; i++) h->v[i] = f->v[i] + g->v[i];
}

ZK_HD void zk_fe_sub(zk_fe *h, const zk_fe *f, const zk_fe *g) {
    ZK_UNROLL for (int i = 0; i < 10; i++) h->v[i] = f->v[i] - g->v[i];
}

ZK_HD void zk_fe_neg(zk_fe *h, const zk_fe *f) {
    ZK_UNROLL for (int i = 0; i < 10; i++) h->v[i] = -f->v[i];
}

/* One signed carry from limb i (of `bits` bits) into limb j. */
#define ZK_CARRY(h, i, j, bits)                                              \
    do {                                                                     \
        int64_t c_ = ((h)[i] + ((int64_t)1 << ((bits) - 1))) >> (bits);      \
        (h)[j] += c_;                                                        \
        (h)[i] -= c_ * ((int64_t)1 << (bits));                               \
    } while (0)

/* ref10's carry chain from 64-bit accumulators to a carried element. */
ZK_HD void zk_fe_carry_wide(zk_fe *out, int64_t h[10]) {
    ZK_CARRY(h, 0, 1, 26);
    ZK_CARRY(h, 4, 5, 26);
    ZK_CARRY(h, 1, 2, 25);
    ZK_CARRY(h, 5, 6, 25);
    ZK_CARRY(h, 2, 3, 26);
    ZK_CARRY(h, 6, 7, 26);
    ZK_CARRY(h, 3, 4, 25);
    ZK_CARRY(h, 7, 8, 25);
    ZK_CARRY(h, 4, 5, 26);
    ZK_CARRY(h, 8, 9, 26);
    {
        int64_t c = (h[9] + ((int64_t)1 << 24)) >> 25;
        h[0] += c * 19;
        h[9] -= c * ((int64_t)1 << 25);
    }
    ZK_CARRY(h, 0, 1, 26);
    ZK_UNROLL for (int i = 0; i < 10; i++) out->v[i] = (int32_t)h[i];
}

/* Brings the limbs of a sum or difference back to carried size. */
ZK_HD void zk_fe_carry(zk_fe *h, const zk_fe *f) {
    int64_t w[10];
    ZK_UNROLL for (int i = 0; i < 10; i++) w[i] = f->v[i];
    zk_fe_carry_wide(h, w);
}

/* h = f * g. h may alias f or g. Coefficients as in ref10's fe_mul:
 * x 2 when both limbs are odd (their offsets are each half a bit low),
 * x 19 when the product wraps past 2^255. */
ZK_HD void zk_fe_mul(zk_fe *h, const zk_fe *f, const zk_fe *g) {
    int32_t a[10], b[10], b19[10];
    int64_t w[10];
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        a[i] = f->v[i];
        b[i] = g->v[i];
        b19[i] = 19 * g->v[i];
        w[i] = 0;
    }
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        int32_t a2 = 2 * a[i];
        ZK_UNROLL for (int j = 0; j < 10; j++) {
            int32_t x = ((i & 1) && (j & 1)) ? a2 : a[i];
            int32_t y = (i + j >= 10) ? b19[j] : b[j];
            w[(i + j) % 10] += (int64_t)x * y;
        }
    }
    zk_fe_carry_wide(h, w);
}

/* h = f^2, or 2 f^2 when `twice` (ref10's fe_sq2, doubled before the
 * carry so that the result is carried). */
ZK_HD void zk_fe_sq_inner(zk_fe *h, const zk_fe *f, int twice) {
    int32_t a[10], a19[10];
    int64_t w[10];
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        a[i] = f->v[i];
        a19[i] = 19 * f->v[i];
        w[i] = 0;
    }
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        ZK_UNROLL for (int j = i; j < 10; j++) {
            int32_t k = (i < j ? 2 : 1) * (((i & 1) && (j & 1)) ? 2 : 1);
            int32_t x = k * a[i];
            int32_t y = (i + j >= 10) ? a19[j] : a[j];
            w[(i + j) % 10] += (int64_t)x * y;
        }
    }
    if (twice) {
        ZK_UNROLL for (int i = 0; i < 10; i++) w[i] += w[i];
    }
    zk_fe_carry_wide(h, w);
}

ZK_HD void zk_fe_sq(zk_fe *h, const zk_fe *f) { zk_fe_sq_inner(h, f, 0); }
ZK_HD void zk_fe_sq2(zk_fe *h, const zk_fe *f) { zk_fe_sq_inner(h, f, 1); }

/* h = f^(2^n), n >= 1. */
ZK_HD void zk_fe_sqn(zk_fe *h, const zk_fe *f, int n) {
    zk_fe_sq(h, f);
    for (int i = 1; i < n; i++) zk_fe_sq(h, h);
}

/* The common head of inversion and pow22523 (ref10's addition chain):
 * t250 = z^(2^250 - 1), z11 = z^11. */
ZK_HD_BIG void zk_fe_pow_2_250_1(zk_fe *t250, zk_fe *z11, const zk_fe *z) {
    zk_fe t0, t1, t2;
    zk_fe_sq(&t0, z);          /* z^2 */
    zk_fe_sqn(&t1, &t0, 2);    /* z^8 */
    zk_fe_mul(&t1, z, &t1);    /* z^9 */
    zk_fe_mul(&t0, &t0, &t1);  /* z^11 */
    *z11 = t0;
    zk_fe_sq(&t2, &t0);        /* z^22 */
    zk_fe_mul(&t1, &t1, &t2);  /* z^(2^5 - 1) */
    zk_fe_sqn(&t2, &t1, 5);
    zk_fe_mul(&t1, &t2, &t1);  /* z^(2^10 - 1) */
    zk_fe_sqn(&t2, &t1, 10);
    zk_fe_mul(&t2, &t2, &t1);  /* z^(2^20 - 1) */
    zk_fe_sqn(&t0, &t2, 20);
    zk_fe_mul(&t2, &t0, &t2);  /* z^(2^40 - 1) */
    zk_fe_sqn(&t2, &t2, 10);
    zk_fe_mul(&t1, &t2, &t1);  /* z^(2^50 - 1) */
    zk_fe_sqn(&t2, &t1, 50);
    zk_fe_mul(&t2, &t2, &t1);  /* z^(2^100 - 1) */
    zk_fe_sqn(&t0, &t2, 100);
    zk_fe_mul(&t2, &t0, &t2);  /* z^(2^200 - 1) */
    zk_fe_sqn(&t2, &t2, 50);
    zk_fe_mul(t250, &t2, &t1); /* z^(2^250 - 1) */
}

/* h = z^(p - 2) = 1/z (and 0 for z = 0). */
ZK_HD_BIG void zk_fe_invert(zk_fe *h, const zk_fe *z) {
    zk_fe t, z11;
    zk_fe_pow_2_250_1(&t, &z11, z);
    zk_fe_sqn(&t, &t, 5);      /* z^(2^255 - 32) */
    zk_fe_mul(h, &t, &z11);    /* z^(2^255 - 21) */
}

/* h = z^((p - 5) / 8) = z^(2^252 - 3). */
ZK_HD_BIG void zk_fe_pow22523(zk_fe *h, const zk_fe *z) {
    zk_fe t, z11;
    zk_fe_pow_2_250_1(&t, &z11, z);
    zk_fe_sqn(&t, &t, 2);      /* z^(2^252 - 4) */
    zk_fe_mul(h, &t, z);       /* z^(2^252 - 3) */
}

/* Little-endian bytes to an element, ignoring the top bit (RFC 7748);
 * values in [p, 2^255) are accepted and reduced by later arithmetic. */
ZK_HD void zk_fe_frombytes(zk_fe *h, const uint8_t s[32]) {
    uint64_t acc = 0;
    int bits = 0, pos = 0;
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        int w = zk_limb_bits(i);
        while (bits < w) {
            acc |= (uint64_t)s[pos++] << bits;
            bits += 8;
        }
        h->v[i] = (int32_t)(acc & (((uint64_t)1 << w) - 1));
        acc >>= w;
        bits -= w;
    }
}

/* The canonical encoding: the unique value in [0, p), little-endian,
 * top bit clear (ref10's fe_tobytes). */
ZK_HD void zk_fe_tobytes(uint8_t s[32], const zk_fe *f) {
    zk_fe c;
    int32_t h[10];
    zk_fe_carry(&c, f);
    ZK_UNROLL for (int i = 0; i < 10; i++) h[i] = c.v[i];
    /* q = floor(h / p), 0 or 1 for a carried h. */
    int32_t q = (19 * h[9] + ((int32_t)1 << 24)) >> 25;
    ZK_UNROLL for (int i = 0; i < 10; i++) q = (h[i] + q) >> zk_limb_bits(i);
    h[0] += 19 * q;
    ZK_UNROLL for (int i = 0; i < 9; i++) {
        int w = zk_limb_bits(i);
        int32_t carry = h[i] >> w;
        h[i + 1] += carry;
        h[i] -= carry * ((int32_t)1 << w);
    }
    h[9] -= (h[9] >> 25) * ((int32_t)1 << 25); /* drops 2^255 q */
    uint64_t acc = 0;
    int bits = 0, pos = 0;
    ZK_UNROLL for (int i = 0; i < 10; i++) {
        acc |= (uint64_t)(uint32_t)h[i] << bits;
        bits += zk_limb_bits(i);
        while (bits >= 8) {
            s[pos++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    s[31] = (uint8_t)acc; /* the last 7 bits */
}

ZK_HD int zk_bytes_eq(const uint8_t a[32], const uint8_t b[32]) {
    uint8_t diff = 0;
    ZK_UNROLL for (int i = 0; i < 32; i++) diff |= a[i] ^ b[i];
    return diff == 0;
}

ZK_HD int zk_fe_eq(const zk_fe *f, const zk_fe *g) {
    uint8_t a[32], b[32];
    zk_fe_tobytes(a, f);
    zk_fe_tobytes(b, g);
    return zk_bytes_eq(a, b);
}

ZK_HD int zk_fe_is_zero(const zk_fe *f) {
    zk_fe z;
    zk_fe_zero(&z);
    return zk_fe_eq(f, &z);
}

/* RFC 9496 IS_NEGATIVE: the low bit of the canonical encoding. */
ZK_HD int zk_fe_is_negative(const zk_fe *f) {
    uint8_t s[32];
    zk_fe_tobytes(s, f);
    return s[0] & 1;
}

/* f = g when b = 1, unchanged when b = 0. */
ZK_HD void zk_fe_cmov(zk_fe *f, const zk_fe *g, int b) {
    int32_t mask = -(int32_t)b;
    ZK_UNROLL for (int i = 0; i < 10; i++) f->v[i] ^= (f->v[i] ^ g->v[i]) & mask;
}

/* f = -f when b = 1. */
ZK_HD void zk_fe_cneg(zk_fe *f, int b) {
    zk_fe n;
    zk_fe_neg(&n, f);
    zk_fe_cmov(f, &n, b);
}

/* RFC 9496 CT_ABS. */
ZK_HD void zk_fe_abs(zk_fe *f) { zk_fe_cneg(f, zk_fe_is_negative(f)); }

/* ------------------------------------------------------------------ */
/* Points                                                              */
/* ------------------------------------------------------------------ */

/* Extended coordinates. */
typedef struct {
    zk_fe X, Y, Z, T;
} zk_p3;

/* Completed coordinates: x = X/Z, y = Y/T. */
typedef struct {
    zk_fe X, Y, Z, T;
} zk_p1p1;

/* Projective coordinates. */
typedef struct {
    zk_fe X, Y, Z;
} zk_p2;

/* A point prepared as the right-hand operand of an addition. */
typedef struct {
    zk_fe YplusX, YminusX, Z, T2d;
} zk_cached;

/* An affine point prepared for mixed addition: (y + x, y - x, 2dxy),
 * padded to 128 bytes so that table entries are aligned loads. */
typedef struct ZK_ALIGN16 {
    zk_fe ypx, ymx, xy2d;
    int32_t pad[2];
} zk_niels;

ZK_HD void zk_p3_identity(zk_p3 *p) {
    zk_fe_zero(&p->X);
    zk_fe_one(&p->Y);
    zk_fe_one(&p->Z);
    zk_fe_zero(&p->T);
}

ZK_HD void zk_p3_to_cached(zk_cached *r, const zk_p3 *p) {
    zk_fe d2;
    zk_fe_d2(&d2);
    zk_fe_add(&r->YplusX, &p->Y, &p->X);
    zk_fe_sub(&r->YminusX, &p->Y, &p->X);
    r->Z = p->Z;
    zk_fe_mul(&r->T2d, &p->T, &d2);
}

ZK_HD void zk_p3_to_p2(zk_p2 *r, const zk_p3 *p) {
    r->X = p->X;
    r->Y = p->Y;
    r->Z = p->Z;
}

ZK_HD void zk_p1p1_to_p2(zk_p2 *r, const zk_p1p1 *p) {
    zk_fe_mul(&r->X, &p->X, &p->T);
    zk_fe_mul(&r->Y, &p->Y, &p->Z);
    zk_fe_mul(&r->Z, &p->Z, &p->T);
}

ZK_HD void zk_p1p1_to_p3(zk_p3 *r, const zk_p1p1 *p) {
    zk_fe_mul(&r->X, &p->X, &p->T);
    zk_fe_mul(&r->Y, &p->Y, &p->Z);
    zk_fe_mul(&r->Z, &p->Z, &p->T);
    zk_fe_mul(&r->T, &p->X, &p->Y);
}

/* r = 2p (ref10 ge_p2_dbl; dbl-2008-hwcd). */
ZK_HD void zk_p2_dbl(zk_p1p1 *r, const zk_p2 *p) {
    zk_fe t0;
    zk_fe_sq(&r->X, &p->X);
    zk_fe_sq(&r->Z, &p->Y);
    zk_fe_sq2(&r->T, &p->Z);
    zk_fe_add(&r->Y, &p->X, &p->Y);
    zk_fe_sq(&t0, &r->Y);
    zk_fe_add(&r->Y, &r->Z, &r->X);
    zk_fe_sub(&r->Z, &r->Z, &r->X);
    zk_fe_sub(&r->X, &t0, &r->Y);
    zk_fe_sub(&r->T, &r->T, &r->Z);
}

/* r = p + q (ref10 ge_add; add-2008-hwcd-3). */
ZK_HD void zk_add_cached(zk_p1p1 *r, const zk_p3 *p, const zk_cached *q) {
    zk_fe t0;
    zk_fe_add(&r->X, &p->Y, &p->X);
    zk_fe_sub(&r->Y, &p->Y, &p->X);
    zk_fe_mul(&r->Z, &r->X, &q->YplusX);
    zk_fe_mul(&r->Y, &r->Y, &q->YminusX);
    zk_fe_mul(&r->T, &q->T2d, &p->T);
    zk_fe_mul(&r->X, &p->Z, &q->Z);
    zk_fe_add(&t0, &r->X, &r->X);
    zk_fe_sub(&r->X, &r->Z, &r->Y);
    zk_fe_add(&r->Y, &r->Z, &r->Y);
    zk_fe_add(&r->Z, &t0, &r->T);
    zk_fe_sub(&r->T, &t0, &r->T);
}

/* r = p + q for an affine q (ref10 ge_madd): seven multiplications. */
ZK_HD void zk_add_niels(zk_p1p1 *r, const zk_p3 *p, const zk_niels *q) {
    zk_fe t0;
    zk_fe_add(&r->X, &p->Y, &p->X);
    zk_fe_sub(&r->Y, &p->Y, &p->X);
    zk_fe_mul(&r->Z, &r->X, &q->ypx);
    zk_fe_mul(&r->Y, &r->Y, &q->ymx);
    zk_fe_mul(&r->T, &q->xy2d, &p->T);
    zk_fe_add(&t0, &p->Z, &p->Z);
    zk_fe_sub(&r->X, &r->Z, &r->Y);
    zk_fe_add(&r->Y, &r->Z, &r->Y);
    zk_fe_add(&r->Z, &t0, &r->T);
    zk_fe_sub(&r->T, &t0, &r->T);
}

/* q = -q when b = 1: -(x, y) = (-x, y) swaps y+x with y-x and negates xy. */
ZK_HD void zk_niels_cneg(zk_niels *q, int b) {
    zk_fe ypx = q->ypx;
    zk_fe_cmov(&q->ypx, &q->ymx, b);
    zk_fe_cmov(&q->ymx, &ypx, b);
    zk_fe_cneg(&q->xy2d, b);
}

/* r = p + q; r may alias p or q. */
ZK_HD void zk_p3_add(zk_p3 *r, const zk_p3 *p, const zk_p3 *q) {
    zk_cached c;
    zk_p1p1 t;
    zk_p3_to_cached(&c, q);
    zk_add_cached(&t, p, &c);
    zk_p1p1_to_p3(r, &t);
}

/* r = 2p; r may alias p. */
ZK_HD void zk_p3_dbl(zk_p3 *r, const zk_p3 *p) {
    zk_p2 q;
    zk_p1p1 t;
    zk_p3_to_p2(&q, p);
    zk_p2_dbl(&t, &q);
    zk_p1p1_to_p3(r, &t);
}

/* r = -p. */
ZK_HD void zk_p3_neg(zk_p3 *r, const zk_p3 *p) {
    zk_fe_neg(&r->X, &p->X);
    r->Y = p->Y;
    r->Z = p->Z;
    zk_fe_neg(&r->T, &p->T);
}

/* ------------------------------------------------------------------ */
/* Ristretto255 (RFC 9496)                                             */
/* ------------------------------------------------------------------ */

/* Section 4.2 SQRT_RATIO_M1: r = sqrt(u/v) made non-negative, and
 * whether u/v was square (r = sqrt(i u / v) otherwise). */
ZK_HD_BIG int zk_sqrt_ratio_m1(zk_fe *r_out, const zk_fe *u, const zk_fe *v) {
    zk_fe v3, v7, uv3, uv7, r, check, u_neg, u_neg_i, r_prime, sqrt_m1;
    zk_fe_sqrt_m1(&sqrt_m1);
    zk_fe_sq(&v3, v);
    zk_fe_mul(&v3, &v3, v);     /* v^3 */
    zk_fe_sq(&v7, &v3);
    zk_fe_mul(&v7, &v7, v);     /* v^7 */
    zk_fe_mul(&uv3, u, &v3);
    zk_fe_mul(&uv7, u, &v7);
    zk_fe_pow22523(&r, &uv7);
    zk_fe_mul(&r, &uv3, &r);    /* (u v^3) (u v^7)^((p-5)/8) */
    zk_fe_sq(&check, &r);
    zk_fe_mul(&check, v, &check);
    zk_fe_neg(&u_neg, u);
    zk_fe_mul(&u_neg_i, &u_neg, &sqrt_m1);
    int correct_sign = zk_fe_eq(&check, u);
    int flipped_sign = zk_fe_eq(&check, &u_neg);
    int flipped_sign_i = zk_fe_eq(&check, &u_neg_i);
    zk_fe_mul(&r_prime, &sqrt_m1, &r);
    zk_fe_cmov(&r, &r_prime, flipped_sign | flipped_sign_i);
    zk_fe_abs(&r);
    *r_out = r;
    return correct_sign | flipped_sign;
}

/* Section 4.3.1 Decode. Returns 1 and the point, or 0 for bytes that are
 * not a canonical encoding of a ristretto255 element. */
ZK_HD_BIG int zk_ristretto_decode(zk_p3 *p, const uint8_t bytes[32]) {
    zk_fe s, ss, one, u1, u2, u2_sqr, v, t, d, invsqrt, den_x, den_y, x, y;
    uint8_t canonical[32];
    zk_fe_frombytes(&s, bytes);
    zk_fe_tobytes(canonical, &s);
    if (!zk_bytes_eq(canonical, bytes) || zk_fe_is_negative(&s)) return 0;

    zk_fe_one(&one);
    zk_fe_d(&d);
    zk_fe_sq(&ss, &s);
    zk_fe_sub(&u1, &one, &ss);  /* 1 + a s^2 */
    zk_fe_add(&u2, &one, &ss);  /* 1 - a s^2 */
    zk_fe_sq(&u2_sqr, &u2);
    zk_fe_sq(&t, &u1);
    zk_fe_mul(&t, &d, &t);
    zk_fe_neg(&t, &t);
    zk_fe_sub(&v, &t, &u2_sqr); /* -(D u1^2) - u2^2 */
    zk_fe_carry(&v, &v);
    zk_fe_mul(&t, &v, &u2_sqr);
    int was_square = zk_sqrt_ratio_m1(&invsqrt, &one, &t);
    zk_fe_mul(&den_x, &invsqrt, &u2);
    zk_fe_mul(&den_y, &invsqrt, &den_x);
    zk_fe_mul(&den_y, &den_y, &v);
    zk_fe_add(&x, &s, &s);
    zk_fe_mul(&x, &x, &den_x);
    zk_fe_abs(&x);              /* CT_ABS(2 s den_x) */
    zk_fe_mul(&y, &u1, &den_y);
    zk_fe_mul(&t, &x, &y);
    if (!was_square || zk_fe_is_negative(&t) || zk_fe_is_zero(&y)) return 0;
    p->X = x;
    p->Y = y;
    zk_fe_one(&p->Z);
    p->T = t;
    return 1;
}

/* Section 4.3.2 Encode. */
ZK_HD_BIG void zk_ristretto_encode(uint8_t out[32], const zk_p3 *p) {
    zk_fe u1, u2, t, one, invsqrt, den1, den2, z_inv, ix0, iy0, ench, x, y, den_inv, s, k;
    zk_fe_one(&one);
    zk_fe_add(&u1, &p->Z, &p->Y);
    zk_fe_sub(&t, &p->Z, &p->Y);
    zk_fe_mul(&u1, &u1, &t);        /* (Z + Y)(Z - Y) */
    zk_fe_mul(&u2, &p->X, &p->Y);
    zk_fe_sq(&t, &u2);
    zk_fe_mul(&t, &u1, &t);
    zk_sqrt_ratio_m1(&invsqrt, &one, &t);
    zk_fe_mul(&den1, &invsqrt, &u1);
    zk_fe_mul(&den2, &invsqrt, &u2);
    zk_fe_mul(&z_inv, &den1, &den2);
    zk_fe_mul(&z_inv, &z_inv, &p->T);
    zk_fe_sqrt_m1(&k);
    zk_fe_mul(&ix0, &p->X, &k);
    zk_fe_mul(&iy0, &p->Y, &k);
    zk_fe_invsqrt_a_minus_d(&k);
    zk_fe_mul(&ench, &den1, &k);    /* enchanted denominator */
    zk_fe_mul(&t, &p->T, &z_inv);
    int rotate = zk_fe_is_negative(&t);
    x = p->X;
    y = p->Y;
    den_inv = den2;
    zk_fe_cmov(&x, &iy0, rotate);
    zk_fe_cmov(&y, &ix0, rotate);
    zk_fe_cmov(&den_inv, &ench, rotate);
    zk_fe_mul(&t, &x, &z_inv);
    zk_fe_cneg(&y, zk_fe_is_negative(&t));
    zk_fe_sub(&s, &p->Z, &y);
    zk_fe_mul(&s, &den_inv, &s);
    zk_fe_abs(&s);
    zk_fe_tobytes(out, &s);
}

/* ------------------------------------------------------------------ */
/* Fixed-base tables                                                   */
/* ------------------------------------------------------------------ */

/* Fixed-base tables. A table of a base P has `windows` windows of
 * `entries` entries; window k holds (j + 1) R^k P for j = 0 .. entries - 1
 * in affine Niels form, R = 2^log_radix, laid out [base][window][entry].
 * Two layouts are used:
 *
 * public (msm_public): R = 256, 32 windows of 128 entries. A scalar is
 * recoded into 32 signed radix-2^8 digits d_k in [-128, 127]; a canonical
 * scalar is below 2^253, so its top byte is at most 0x1f and the top
 * digit takes no carry out: 32 windows suffice.
 *
 * secret (commit_bits): R = 16, 64 windows of 8 entries (ZK_CT_*), digits
 * in [-8, 8), read in constant time by zk_ct_select (ct_fixed_base.cuh). */
#define ZK_WINDOWS 32
#define ZK_WINDOW_ENTRIES 128
#define ZK_LOG_RADIX 8

/* Per-entry scratch while a window is built: the projective multiple and
 * the running product of Z coordinates (for one batched inversion). */
typedef struct {
    zk_fe X, Y, Z, prefix;
} zk_scratch;

/* q[k] = R^k p for k = 0 .. windows - 1, R = 2^log_radix (log_radix >= 1). */
ZK_HD_BIG void zk_window_bases(zk_p3 *q, const zk_p3 *p, int windows, int log_radix) {
    zk_p3 cur = *p;
    q[0] = cur;
    for (int k = 1; k < windows; k++) {
        zk_p2 a;
        zk_p1p1 t;
        zk_p3_to_p2(&a, &cur);
        for (int i = 1; i < log_radix; i++) {
            zk_p2_dbl(&t, &a);
            zk_p1p1_to_p2(&a, &t);
        }
        zk_p2_dbl(&t, &a);
        zk_p1p1_to_p3(&cur, &t);
        q[k] = cur;
    }
}

/* out[j] = (j + 1) q in affine Niels form, j = 0 .. entries - 1, using
 * scratch[0 .. entries - 1] and a single inversion (Montgomery's trick). */
ZK_HD_BIG void zk_table_window(zk_niels *out, zk_scratch *scratch, const zk_p3 *q, int entries) {
    zk_cached qc;
    zk_p3 acc = *q;
    zk_fe prefix, inv, zinv, x, y, d2;
    zk_p3_to_cached(&qc, q);
    zk_fe_one(&prefix);
    for (int j = 0; j < entries; j++) {
        if (j > 0) {
            zk_p1p1 t;
            zk_add_cached(&t, &acc, &qc);
            zk_p1p1_to_p3(&acc, &t);
        }
        zk_fe_mul(&prefix, &prefix, &acc.Z);
        scratch[j].X = acc.X;
        scratch[j].Y = acc.Y;
        scratch[j].Z = acc.Z;
        scratch[j].prefix = prefix;
    }
    /* Complete addition never yields Z = 0, so the product is invertible. */
    zk_fe_invert(&inv, &prefix);
    zk_fe_d2(&d2);
    for (int j = entries - 1; j >= 0; j--) {
        if (j > 0) {
            zk_fe_mul(&zinv, &inv, &scratch[j - 1].prefix);
            zk_fe_mul(&inv, &inv, &scratch[j].Z);
        } else {
            zinv = inv;
        }
        zk_fe_mul(&x, &scratch[j].X, &zinv);
        zk_fe_mul(&y, &scratch[j].Y, &zinv);
        zk_niels e;
        zk_fe_add(&e.ypx, &y, &x);
        zk_fe_carry(&e.ypx, &e.ypx);
        zk_fe_sub(&e.ymx, &y, &x);
        zk_fe_carry(&e.ymx, &e.ymx);
        zk_fe_mul(&e.xy2d, &x, &y);
        zk_fe_mul(&e.xy2d, &e.xy2d, &d2);
        e.pad[0] = 0;
        e.pad[1] = 0;
        out[j] = e;
    }
}

/* Signed radix-256 recoding, as bit masks over the 32 bytes of a scalar so
 * that a warp can do it with ballots: `ge128` has bit k set when byte k is
 * at least 128 (it always carries out), `eq127` when it is 127 (it carries
 * out when a carry comes in). Returns the carries into each byte. */
ZK_HD uint32_t zk_recode_carries(uint32_t ge128, uint32_t eq127) {
    uint64_t g = ge128, x = (uint64_t)(ge128 | eq127);
    return (uint32_t)((x + g) ^ x ^ g);
}

/* The digit of a byte given its incoming carry, in [-128, 127]. */
ZK_HD int zk_recode_digit(uint32_t byte, uint32_t carry) {
    int v = (int)(byte + carry);
    return v >= 128 ? v - 256 : v;
}

/* acc += d 256^k P, where `window` is window k of P's table. */
ZK_HD void zk_acc_digit(zk_p3 *acc, const zk_niels *window, int d) {
    if (d == 0) return;
    zk_niels e = window[(d < 0 ? -d : d) - 1];
    zk_niels_cneg(&e, d < 0);
    zk_p1p1 t;
    zk_add_niels(&t, acc, &e);
    zk_p1p1_to_p3(acc, &t);
}

#endif /* ZK_CURVE25519_CUH */
