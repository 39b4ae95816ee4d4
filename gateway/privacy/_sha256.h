/*
 * SHA-256 (FIPS 180-4), for the keyed pseudonyms of _speedups.c.
 *
 * Only what HMAC-SHA256 of a short identifier needs: a state that can be
 * copied after the padded key's block (the HMAC key schedule done once), fed
 * bytes, and finished. Tests compare every result with hashlib/hmac.
 *
 * A block is compressed with the x86 SHA extensions where the CPU has them
 * (sha256_compress_accelerated, chosen at import by sha256_select): a build
 * pseudonymises every identifier it has not seen in the window, about two
 * million HMACs for a million events, and the portable code spent a tenth of
 * the build on them. Both compressions are tested against hashlib.
 */
#ifndef GATEWAY_SHA256_H
#define GATEWAY_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SHA256_BLOCK 64
#define SHA256_DIGEST 32

typedef struct {
    uint32_t h[8];
    uint64_t length; /* bytes fed so far */
    uint8_t buffer[SHA256_BLOCK];
    size_t used; /* bytes waiting in buffer */
} sha256_state;

/* The first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static inline uint32_t
sha256_rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t
sha256_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void
sha256_store_be32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)(x >> 24);
    p[1] = (uint8_t)(x >> 16);
    p[2] = (uint8_t)(x >> 8);
    p[3] = (uint8_t)x;
}

static void
sha256_init(sha256_state *s)
{
    /* The first 32 bits of the fractional parts of the square roots of the first 8 primes. */
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, initial, sizeof(initial));
    s->length = 0;
    s->used = 0;
}

static void
sha256_compress_portable(uint32_t h[8], const uint8_t block[SHA256_BLOCK])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++) {
        w[t] = sha256_load_be32(block + 4 * t);
    }
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = sha256_rotr(w[t - 15], 7) ^ sha256_rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = sha256_rotr(w[t - 2], 17) ^ sha256_rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t sum1 = sha256_rotr(e, 6) ^ sha256_rotr(e, 11) ^ sha256_rotr(e, 25);
        uint32_t choose = (e & f) ^ (~e & g);
        uint32_t t1 = k + sum1 + choose + sha256_k[t] + w[t];
        uint32_t sum0 = sha256_rotr(a, 2) ^ sha256_rotr(a, 13) ^ sha256_rotr(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = sum0 + majority;
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define SHA256_CAN_ACCELERATE 1

/* The same compression with SHA-NI: the state is kept as the instructions want it, in
 * two registers (A, B, E, F) and (C, D, G, H); each sha256rnds2 does two rounds, and
 * sha256msg1/msg2 extend the message schedule four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
sha256_compress_accelerated(uint32_t h[8], const uint8_t block[SHA256_BLOCK])
{
    /* Reverses the bytes of each 32-bit word: the message words are big-endian. */
    const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);
    __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
    const __m128i abef_before = abef, cdgh_before = cdgh;
    __m128i words[4]; /* the last four groups of four message words */
    for (int group = 0; group < 16; group++) {
        __m128i w;
        if (group < 4) {
            w = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * group)),
                                 big_endian);
        }
        else {
            /* W[t] for four t: sigma0 terms (msg1), W[t-7] (alignr), sigma1 terms (msg2). */
            __m128i previous = words[(group - 1) & 3];
            w = _mm_sha256msg1_epu32(words[group & 3], words[(group - 3) & 3]);
            w = _mm_add_epi32(w, _mm_alignr_epi8(previous, words[(group - 2) & 3], 4));
            w = _mm_sha256msg2_epu32(w, previous);
        }
        words[group & 3] = w;
        __m128i message = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)&sha256_k[4 * group]));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(message, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int
sha256_cpu_accelerates(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) {
        return 0;
    }
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)); /* SHA */
}
#else
#define SHA256_CAN_ACCELERATE 0
#endif

static void (*sha256_compress)(uint32_t h[8], const uint8_t block[SHA256_BLOCK]) =
    sha256_compress_portable;

/* Compress with the SHA extensions if ``accelerate`` and the CPU has them, else with the
 * portable code; 1 when accelerated. At import, and by tests for each compression. */
static int
sha256_select(int accelerate)
{
    sha256_compress = sha256_compress_portable;
#if SHA256_CAN_ACCELERATE
    if (accelerate && sha256_cpu_accelerates()) {
        sha256_compress = sha256_compress_accelerated;
    }
#endif
    return sha256_compress != sha256_compress_portable;
}

static void
sha256_update(sha256_state *s, const uint8_t *data, size_t length)
{
    s->length += length;
    if (s->used) {
        size_t take = SHA256_BLOCK - s->used;
        if (take > length) {
            take = length;
        }
        memcpy(s->buffer + s->used, data, take);
        s->used += take;
        data += take;
        length -= take;
        if (s->used < SHA256_BLOCK) {
            return;
        }
        sha256_compress(s->h, s->buffer);
        s->used = 0;
    }
    while (length >= SHA256_BLOCK) {
        sha256_compress(s->h, data);
        data += SHA256_BLOCK;
        length -= SHA256_BLOCK;
    }
    if (length) {
        memcpy(s->buffer, data, length);
        s->used = length;
    }
}

static void
sha256_final(sha256_state *s, uint8_t digest[SHA256_DIGEST])
{
    uint64_t bits = s->length * 8;
    /* A 1 bit, zeros up to 8 bytes short of a block boundary, then the length in bits. */
    s->buffer[s->used++] = 0x80;
    if (s->used > SHA256_BLOCK - 8) {
        memset(s->buffer + s->used, 0, SHA256_BLOCK - s->used);
        sha256_compress(s->h, s->buffer);
        s->used = 0;
    }
    memset(s->buffer + s->used, 0, SHA256_BLOCK - 8 - s->used);
    for (int i = 0; i < 8; i++) {
        s->buffer[SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
    }
    sha256_compress(s->h, s->buffer);
    for (int i = 0; i < 8; i++) {
        sha256_store_be32(digest + 4 * i, s->h[i]);
    }
}

#endif /* GATEWAY_SHA256_H */
