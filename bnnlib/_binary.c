/* bnnlib._binary — inference of a packed fully binary MLP on its bits (see bnnlib/binary.py).
 *
 * Block 1 works on the uint8 pixels p: with s = ±1 the weight signs and S = Σ_{s=+1} p,
 *   a = Σ (2p − 255)·s = 4·S − 2·Σp + 255·(n − 2·#(+1)),
 * so each unit needs only S, the sum of the pixels where its weight bit is set: the 64 weight
 * bits of a chunk are a mask (AVX512BW: masked byte move, then VNNI vpdpbusd against ones), or expanded to a byte
 * mask (AVX2: shuffle + compare, then vpsadbw), or tested bit by bit (plain C). Exact integers.
 * Batches on AVX512 go four images at a time through block 1 as a = 2·Σ p·s + 255·(n − 2·#(+1))
 * on the weights as ±1 bytes (unpacked once), each 64-byte load shared by the four images.
 * Blocks 2–4 work on ±1 activations as bits: a = n − 2·popcount(w XOR x) (AVX512 VPOPCNTDQ on
 * 512 bits, else the popcnt of 64-bit words). Every hidden unit's sign is its integer threshold
 * (mode, T) exactly as bnnlib.deploy.PackedNetwork. Bits are kept LSB first: bit j of a vector
 * is bit (j & 7) of byte j >> 3; rows are zero-padded to 64 bytes, so padding never counts.
 * The output layer is float32 ±w sums and tanh; an image whose winner could differ from the
 * float32 GEMM + tanh of the reference engine (a near tie, or tanh saturating to equal values)
 * is flagged (−1) and the caller computes it with that engine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BNN_X86 1
#include <immintrin.h>
#else
#define BNN_X86 0
#endif

#define ABOVE 1
#define BELOW (-1)
#define PLUS 2
#define MINUS (-2)
#define MAX_LAYERS 16
#define ALIGN 64

enum { PATH_GENERIC = 0, PATH_AVX2 = 1, PATH_AVX512 = 2 };
static const char *PATH_NAMES[] = {"generic", "avx2", "avx512"};

typedef struct {
    int fan_in, fan_out, stride;  /* stride: bytes per padded row (a multiple of 64) */
    uint8_t *bits;                /* fan_out rows of stride bytes, LSB first */
    int8_t *modes;
    int32_t *limits;
    int32_t *offset;              /* block 1: 255·(n − 2·#(+1)) per unit */
    int8_t *signs;                /* block 1 on the AVX512 path: the weights as ±1 bytes, rows of stride·8 bytes
                                     (zero-padded), for batches of 4 images (block1_avx512_four) */
    /* per 16 units (rows padded to a multiple of 16 with zero bits and mode MINUS): which units
       fire above, below, always — the AVX512 path thresholds 16 units in three mask operations */
    uint16_t *above, *below, *plus;
} Layer;

typedef struct {
    PyObject_HEAD
    int n_layers, n_classes, input_size, path;
    int max_stride;
    Layer layers[MAX_LAYERS];
    float *output;                /* (last hidden, classes), row-major */
    float *bound;                 /* per class: a bound on the float32 GEMM's rounding error */
} Kernel;

static void *aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, bytes ? bytes : ALIGN) != 0) return NULL;
    memset(p, 0, bytes ? bytes : ALIGN);
    return p;
}

/* branch-free: a unit's sign is as unpredictable as a coin, a branch on it would miss half the time */
static inline unsigned fires(int8_t mode, int32_t limit, int32_t a) {
    return ((unsigned)(mode == ABOVE) & (unsigned)(a >= limit)) | ((unsigned)(mode == BELOW) & (unsigned)(a <= limit)) |
           (unsigned)(mode == PLUS);
}

/* ------------------------------------------------------------------ plain C */
/* S per unit by table: for each 4 pixels, the sums of their 16 subsets (built once per image),
   then one look-up per 4 weight bits (the same method as the C file of bnnlib/cexport.py) */
static void block1_generic(const Layer *L, const uint8_t *p, int32_t psum, uint8_t *out, int32_t *table) {
    int groups = (L->fan_in + 3) / 4;  /* p is zero-padded past fan_in */
    for (int g = 0; g < groups; g++) {
        int32_t a = p[4 * g], b = p[4 * g + 1], c = p[4 * g + 2], d = p[4 * g + 3];
        for (int i = 0; i < 16; i++)
            table[16 * g + i] = (i & 1 ? a : 0) + (i & 2 ? b : 0) + (i & 4 ? c : 0) + (i & 8 ? d : 0);
    }
    for (int u = 0; u < L->fan_out; u++) {
        const uint8_t *w = L->bits + (size_t)u * L->stride;
        int32_t s = 0;
        for (int g = 0; g < groups; g++) s += table[16 * g + ((w[g >> 1] >> (4 * (g & 1))) & 15)];
        int32_t a = 4 * s - 2 * psum + L->offset[u];
        out[u >> 3] |= (uint8_t)(fires(L->modes[u], L->limits[u], a) << (u & 7));
    }
}

static void hidden_generic(const Layer *L, const uint8_t *x, uint8_t *out) {
    int words = L->stride / 8;
    for (int u = 0; u < L->fan_out; u++) {
        const uint8_t *w = L->bits + (size_t)u * L->stride;
        int32_t c = 0;
        for (int k = 0; k < words; k++) {
            uint64_t a, b;
            memcpy(&a, w + 8 * k, 8);
            memcpy(&b, x + 8 * k, 8);
            uint64_t v = a ^ b;  /* popcount, portable (SWAR) */
            v = v - ((v >> 1) & 0x5555555555555555ULL);
            v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
            v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
            c += (int32_t)((v * 0x0101010101010101ULL) >> 56);
        }
        int32_t a = L->fan_in - 2 * c;
        out[u >> 3] |= (uint8_t)(fires(L->modes[u], L->limits[u], a) << (u & 7));
    }
}

#if BNN_X86
/* ------------------------------------------------------------------ AVX2 */
__attribute__((target("avx2,popcnt")))
static void block1_avx2(const Layer *L, const uint8_t *p, int32_t psum, uint8_t *out) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i zero = _mm256_setzero_si256();
    int chunks = (L->fan_in + 31) / 32;
    for (int u = 0; u < L->fan_out; u++) {
        const uint8_t *w = L->bits + (size_t)u * L->stride;
        __m256i acc = zero;
        for (int c = 0; c < chunks; c++) {
            uint32_t bits;
            memcpy(&bits, w + 4 * c, 4);
            __m256i m = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
            m = _mm256_cmpeq_epi8(_mm256_and_si256(m, select), select);
            __m256i v = _mm256_and_si256(_mm256_load_si256((const __m256i *)(p + 32 * c)), m);
            acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
        }
        __m128i h = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        int32_t s = (int32_t)(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1));
        int32_t a = 4 * s - 2 * psum + L->offset[u];
        out[u >> 3] |= (uint8_t)(fires(L->modes[u], L->limits[u], a) << (u & 7));
    }
}

__attribute__((target("avx2,popcnt")))
static void hidden_avx2(const Layer *L, const uint8_t *x, uint8_t *out) {
    int words = L->stride / 8;
    const uint64_t *xv = (const uint64_t *)x;
    for (int u = 0; u < L->fan_out; u++) {
        const uint64_t *w = (const uint64_t *)(L->bits + (size_t)u * L->stride);
        int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (int k = 0; k < words; k += 4) {  /* stride is a multiple of 64 bytes: words % 8 == 0 */
            c0 += _mm_popcnt_u64(w[k] ^ xv[k]);
            c1 += _mm_popcnt_u64(w[k + 1] ^ xv[k + 1]);
            c2 += _mm_popcnt_u64(w[k + 2] ^ xv[k + 2]);
            c3 += _mm_popcnt_u64(w[k + 3] ^ xv[k + 3]);
        }
        int32_t a = L->fan_in - 2 * (int32_t)(c0 + c1 + c2 + c3);
        out[u >> 3] |= (uint8_t)(fires(L->modes[u], L->limits[u], a) << (u & 7));
    }
}

/* ------------------------------------------------------------------ AVX512 */
#define AVX512 "avx512f,avx512bw,avx512vpopcntdq,avx512vnni,popcnt"

__attribute__((target(AVX512)))
static inline __mmask64 mask_at(const uint8_t *bits) {  /* 64 weight bits, LSB first: bit i masks byte i */
    uint64_t v;
    memcpy(&v, bits, 8);
    return _cvtu64_mask64(v);
}

/* the 16 int32 sums of 16 accumulators, in unit order (a transposing add tree: 45 instructions
   for 16 units instead of a horizontal reduction per unit) */
__attribute__((target(AVX512)))
static inline __m512i sum16(const __m512i *acc) {
    __m512i s1[8], s2[4];
    for (int m = 0; m < 8; m++)  /* per 128-bit lane: units 2m, 2m+1 interleaved */
        s1[m] = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2 * m], acc[2 * m + 1]),
                                 _mm512_unpackhi_epi32(acc[2 * m], acc[2 * m + 1]));
    for (int q = 0; q < 4; q++)  /* per 128-bit lane: units 4q .. 4q+3 */
        s2[q] = _mm512_add_epi32(_mm512_unpacklo_epi64(s1[2 * q], s1[2 * q + 1]),
                                 _mm512_unpackhi_epi64(s1[2 * q], s1[2 * q + 1]));
    __m512i u01 = _mm512_add_epi32(_mm512_shuffle_i32x4(s2[0], s2[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(s2[0], s2[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i u23 = _mm512_add_epi32(_mm512_shuffle_i32x4(s2[2], s2[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(s2[2], s2[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(u01, u23, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(u01, u23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* the integer thresholds of units 16g .. 16g+15 at once: 16 output bits */
__attribute__((target(AVX512)))
static inline uint16_t fire16(const Layer *L, int g, __m512i a) {
    __m512i limits = _mm512_load_si512((const void *)(L->limits + 16 * g));
    __mmask16 ge = _mm512_cmpge_epi32_mask(a, limits), le = _mm512_cmple_epi32_mask(a, limits);
    return (uint16_t)((ge & L->above[g]) | (le & L->below[g]) | L->plus[g]);
}

__attribute__((target(AVX512)))
static void block1_avx512(const Layer *L, const uint8_t *p, int32_t psum, uint8_t *out) {
    /* per 64 pixels: the weight bits mask the pixel bytes, and VNNI's vpdpbusd (u8 × s8 dot
       products of 4 bytes, into 16 int32 lanes) sums them against ones in the same instruction;
       16 units at a time, so each pixel chunk is loaded once for 16 rows */
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i base = _mm512_set1_epi32(-2 * psum);
    int chunks = (L->fan_in + 63) / 64, groups = (L->fan_out + 15) / 16;
    for (int g = 0; g < groups; g++) {
        const uint8_t *w = L->bits + (size_t)16 * g * L->stride;
        __m512i acc[16];
        for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_si512();
        for (int c = 0; c < chunks; c++) {
            __m512i v = _mm512_load_si512((const void *)(p + 64 * c));
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++)
                acc[k] = _mm512_dpbusd_epi32(acc[k], _mm512_maskz_mov_epi8(mask_at(w + (size_t)k * L->stride + 8 * c), v),
                                             ones);
        }
        __m512i a = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(sum16(acc), 2), base),
                                     _mm512_load_si512((const void *)(L->offset + 16 * g)));
        uint16_t bits = fire16(L, g, a);
        memcpy(out + 2 * g, &bits, 2);  /* LSB first: unit 16g + i is bit i (x86 is little-endian) */
    }
}

/* block 1 for four images at once (batches): D = Σ p·s by vpdpbusd on the weights as ±1 bytes,
   each 64 bytes of weights loaded once for the four images, a = 2·D + 255·(n − 2·#(+1)).
   At batch 1 the masked form above is faster: it reads 68.6 KB of bits where this reads 549 KB of
   bytes from L2 for one image; shared by four images the bytes cost a quarter, and one vpdpbusd
   per 64 pixels replaces the mask load, the masked move and the vpdpbusd (benchmarks/README.md).
   Units go 4 at a time: 4 units × 4 images = the 16 accumulators of sum16, lane 4·i + k holding
   image i's unit 4q + k. */
__attribute__((target(AVX512)))
static void block1_avx512_four(const Layer *L, uint8_t *const *p, uint8_t *const *out) {
    int chunks = (L->fan_in + 63) / 64, quads = (L->fan_out + 3) / 4;
    size_t row = (size_t)L->stride * 8;
    for (int q = 0; q < quads; q++) {
        const int8_t *w = L->signs + (size_t)4 * q * row;
        __m512i acc[16];
        for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_si512();
        for (int c = 0; c < chunks; c++) {
            __m512i v0 = _mm512_load_si512((const void *)(p[0] + 64 * c)), v1 = _mm512_load_si512((const void *)(p[1] + 64 * c)),
                    v2 = _mm512_load_si512((const void *)(p[2] + 64 * c)), v3 = _mm512_load_si512((const void *)(p[3] + 64 * c));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m512i s = _mm512_load_si512((const void *)(w + k * row + 64 * c));
                acc[k] = _mm512_dpbusd_epi32(acc[k], v0, s);
                acc[4 + k] = _mm512_dpbusd_epi32(acc[4 + k], v1, s);
                acc[8 + k] = _mm512_dpbusd_epi32(acc[8 + k], v2, s);
                acc[12 + k] = _mm512_dpbusd_epi32(acc[12 + k], v3, s);
            }
        }
        __m512i offset = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)(L->offset + 4 * q)));
        __m512i limits = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)(L->limits + 4 * q)));
        __m512i a = _mm512_add_epi32(_mm512_slli_epi32(sum16(acc), 1), offset);
        __mmask16 ge = _mm512_cmpge_epi32_mask(a, limits), le = _mm512_cmple_epi32_mask(a, limits);
        unsigned shift = 4 * (q & 3);  /* the quad's 4 bits in its group of 16 units, repeated for 4 images */
        unsigned above = ((L->above[q >> 2] >> shift) & 15u) * 0x1111u, below = ((L->below[q >> 2] >> shift) & 15u) * 0x1111u,
                 plus = ((L->plus[q >> 2] >> shift) & 15u) * 0x1111u;
        unsigned bits = ((unsigned)ge & above) | ((unsigned)le & below) | plus;
        for (int i = 0; i < 4; i++) out[i][q >> 1] |= (uint8_t)(((bits >> (4 * i)) & 15u) << (4 * (q & 1)));
    }
}

__attribute__((target(AVX512)))
static void hidden_avx512(const Layer *L, const uint8_t *x, uint8_t *out) {
    int chunks = L->stride / 64, groups = (L->fan_out + 15) / 16;
    const __m512i n = _mm512_set1_epi32(L->fan_in);
    for (int g = 0; g < groups; g++) {
        const uint8_t *w = L->bits + (size_t)16 * g * L->stride;
        __m512i acc[16];
        for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_si512();
        for (int c = 0; c < chunks; c++) {
            __m512i v = _mm512_load_si512((const void *)(x + 64 * c));
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++)
                acc[k] = _mm512_add_epi32(acc[k], _mm512_popcnt_epi32(_mm512_xor_si512(
                             _mm512_load_si512((const void *)(w + (size_t)k * L->stride + 64 * c)), v)));
        }
        __m512i a = _mm512_sub_epi32(n, _mm512_slli_epi32(sum16(acc), 1));  /* n − 2·popcount */
        uint16_t bits = fire16(L, g, a);
        memcpy(out + 2 * g, &bits, 2);
    }
}
#endif

static int path_available(int path) {
#if BNN_X86
    __builtin_cpu_init();
    if (path == PATH_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("popcnt");
    if (path == PATH_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
    if (path != PATH_GENERIC) return 0;
#endif
    return 1;
}

/* ------------------------------------------------------------------ one image */
/* buffers: padded pixels (8 × max_stride bytes), two activation vectors (max_stride bytes each),
   then block 1's table for the generic path (16 int32 per 4 pixels) */
#define BUFFER_BYTES(K) ((size_t)(K)->max_stride * 10 + 64 * (size_t)(((K)->input_size + 3) / 4))

/* an image's pixels into its buffers (zero-padded), its block-1 output cleared */
static int32_t load_image(const Kernel *K, const uint8_t *image, uint8_t *buffers) {
    memcpy(buffers, image, (size_t)K->input_size);
    int32_t psum = 0;
    for (int i = 0; i < K->input_size; i++) psum += image[i];
    memset(buffers + K->max_stride * 8, 0, (size_t)K->max_stride);
    return psum;
}

/* blocks 2 … on block 1's output in the buffers: the last hidden block's bits */
static const uint8_t *blocks_after_first(const Kernel *K, uint8_t *buffers) {
    uint8_t *x = buffers + K->max_stride * 8, *y = x + K->max_stride;
    for (int k = 1; k < K->n_layers; k++) {
        memset(y, 0, (size_t)K->max_stride);
#if BNN_X86
        if (K->path == PATH_AVX512) hidden_avx512(&K->layers[k], x, y);
        else if (K->path == PATH_AVX2) hidden_avx2(&K->layers[k], x, y);
        else
#endif
            hidden_generic(&K->layers[k], x, y);
        uint8_t *t = x; x = y; y = t;
    }
    return x;
}

static const uint8_t *last_hidden(const Kernel *K, const uint8_t *image, uint8_t *buffers) {
    uint8_t *p = buffers, *x = buffers + K->max_stride * 8;
    const Layer *L0 = &K->layers[0];
    int32_t psum = load_image(K, image, buffers);
#if BNN_X86
    if (K->path == PATH_AVX512) block1_avx512(L0, p, psum, x);
    else if (K->path == PATH_AVX2) block1_avx2(L0, p, psum, x);
    else
#endif
        block1_generic(L0, p, psum, x, (int32_t *)(buffers + (size_t)K->max_stride * 10));
    return blocks_after_first(K, buffers);
}

static int output_class(const Kernel *K, const uint8_t *x) {
    /* output layer: z_j = Σ_i ±w_ij in float32, in the order of i */
    int n = K->layers[K->n_layers - 1].fan_out, classes = K->n_classes;
    float z[64] = {0.0f};
    for (int i = 0; i < n; i++) {
        const float *w = K->output + (size_t)i * classes;
        /* ±1 × w is exact and z + (−w) is z − w: the same sums as adding or subtracting, without a branch */
        float sign = (float)(2 * ((x[i >> 3] >> (i & 7)) & 1) - 1);
        for (int j = 0; j < classes; j++) z[j] += sign * w[j];
    }
    int best = 0;
    for (int j = 1; j < classes; j++) if (z[j] > z[best]) best = j;
    /* the winner is certain when, within the GEMM's rounding, its tanh stays strictly above
       every other class's by more than the error of any float32 tanh */
    float rival = -INFINITY;
    for (int j = 0; j < classes; j++)
        if (j != best && z[j] + K->bound[j] > rival) rival = z[j] + K->bound[j];
    if (!(tanhf(z[best] - K->bound[best]) - tanhf(rival) > 1e-6f)) return -1;
    return best;
}

static int classify(const Kernel *K, const uint8_t *image, uint8_t *buffers) {
    return output_class(K, last_hidden(K, image, buffers));
}

typedef struct {
    const Kernel *K;
    const uint8_t *images;
    int64_t *out;
    Py_ssize_t start, stop;
    int flagged;
    int failed;
} Work;

static void *work(void *arg) {
    Work *w = (Work *)arg;
    const Kernel *K = w->K;
    size_t bytes = BUFFER_BYTES(K);
    uint8_t *buffers = aligned(4 * bytes);  /* four images' buffers: batches go four at a time on AVX512 */
    if (!buffers) { w->failed = 1; return NULL; }
    Py_ssize_t i = w->start;
#if BNN_X86
    if (K->layers[0].signs)
        for (; i + 4 <= w->stop; i += 4) {
            uint8_t *p[4], *x[4];
            for (int j = 0; j < 4; j++) {
                p[j] = buffers + j * bytes;
                x[j] = p[j] + K->max_stride * 8;
                load_image(K, w->images + (size_t)(i + j) * K->input_size, p[j]);
            }
            block1_avx512_four(&K->layers[0], p, x);
            for (int j = 0; j < 4; j++) {
                int c = output_class(K, blocks_after_first(K, p[j]));
                w->out[i + j] = c;
                w->flagged += c < 0;
            }
        }
#endif
    for (; i < w->stop; i++) {
        int c = classify(w->K, w->images + (size_t)i * w->K->input_size, buffers);
        w->out[i] = c;
        w->flagged += c < 0;
    }
    free(buffers);
    return NULL;
}

/* ------------------------------------------------------------------ Python type */
static void Kernel_dealloc(Kernel *self) {
    for (int k = 0; k < self->n_layers; k++) {
        free(self->layers[k].bits);
        free(self->layers[k].modes);
        free(self->layers[k].limits);
        free(self->layers[k].offset);
        free(self->layers[k].signs);
        free(self->layers[k].above);
        free(self->layers[k].below);
        free(self->layers[k].plus);
    }
    free(self->output);
    free(self->bound);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int bytes_of(PyObject *o, const char *what, Py_ssize_t expected, Py_buffer *view) {
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes; accepted: %zd", what, view->len, expected);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static unsigned char reverse_bits(unsigned char b) {
    b = (unsigned char)((b & 0xF0) >> 4 | (b & 0x0F) << 4);
    b = (unsigned char)((b & 0xCC) >> 2 | (b & 0x33) << 2);
    return (unsigned char)((b & 0xAA) >> 1 | (b & 0x55) << 1);
}

/* Kernel(sizes, layers, output, path): sizes = (input, hidden..., classes); layers = a sequence
   of (packed rows as numpy.packbits writes them (MSB first), modes int8, limits int32) per hidden
   block; output = float32 (last hidden × classes) bytes; path = "avx512" | "avx2" | "generic". */
static int Kernel_init(Kernel *self, PyObject *args, PyObject *kwargs) {
    PyObject *sizes, *layers, *output;
    const char *path;
    static char *names[] = {"sizes", "layers", "output", "path", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOs", names, &sizes, &layers, &output, &path)) return -1;
    int chosen = -1;
    for (int i = 0; i < 3; i++) if (strcmp(path, PATH_NAMES[i]) == 0) chosen = i;
    if (chosen < 0) {
        PyErr_Format(PyExc_ValueError, "path=%s is not one of avx512, avx2, generic", path);
        return -1;
    }
    if (!path_available(chosen)) {
        PyErr_Format(PyExc_ValueError, "path=%s is not supported by this processor; accepted here: %s", path,
                     path_available(PATH_AVX512) ? "avx512, avx2, generic" :
                     path_available(PATH_AVX2) ? "avx2, generic" : "generic");
        return -1;
    }
    self->path = chosen;
    PyObject *seq = PySequence_Fast(sizes, "sizes must be a sequence of ints");
    if (!seq) return -1;
    Py_ssize_t n_sizes = PySequence_Fast_GET_SIZE(seq);
    int dims[MAX_LAYERS + 2];
    if (n_sizes < 3 || n_sizes > MAX_LAYERS + 1) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "sizes has %zd entries; accepted: 3 to %d", n_sizes, MAX_LAYERS + 1);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n_sizes; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v <= 0 || v > (1 << 20)) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "sizes[%zd]=%ld; accepted: 1 to 1048576", i, v);
            return -1;
        }
        dims[i] = (int)v;
    }
    Py_DECREF(seq);
    self->n_layers = (int)n_sizes - 2;
    self->input_size = dims[0];
    self->n_classes = dims[n_sizes - 1];
    if (self->n_classes > 64) {
        PyErr_Format(PyExc_ValueError, "sizes[-1]=%d classes; accepted: 1 to 64", self->n_classes);
        return -1;
    }
    if (PySequence_Size(layers) != self->n_layers) {
        PyErr_Format(PyExc_ValueError, "layers has %zd entries; accepted: %d (one per hidden block)",
                     PySequence_Size(layers), self->n_layers);
        return -1;
    }
    self->max_stride = 0;
    for (int k = 0; k < self->n_layers; k++) {
        Layer *L = &self->layers[k];
        L->fan_in = dims[k];
        L->fan_out = dims[k + 1];
        int row = (L->fan_in + 7) / 8;
        L->stride = (row + 63) / 64 * 64;
        int out_stride = ((L->fan_out + 7) / 8 + 63) / 64 * 64;
        if (L->stride > self->max_stride) self->max_stride = L->stride;
        if (out_stride > self->max_stride) self->max_stride = out_stride;
        PyObject *item = PySequence_GetItem(layers, k);
        if (!item) return -1;
        PyObject *bits, *modes, *limits;
        if (!PyArg_ParseTuple(item, "OOO", &bits, &modes, &limits)) { Py_DECREF(item); return -1; }
        Py_buffer vb, vm, vl;
        if (bytes_of(bits, "a layer's bits", (Py_ssize_t)row * L->fan_out, &vb) < 0) { Py_DECREF(item); return -1; }
        if (bytes_of(modes, "a layer's modes", L->fan_out, &vm) < 0) {
            PyBuffer_Release(&vb); Py_DECREF(item); return -1;
        }
        if (bytes_of(limits, "a layer's limits", 4 * (Py_ssize_t)L->fan_out, &vl) < 0) {
            PyBuffer_Release(&vb); PyBuffer_Release(&vm); Py_DECREF(item); return -1;
        }
        int rows16 = (L->fan_out + 15) / 16 * 16;
        L->bits = aligned((size_t)L->stride * rows16);
        L->modes = aligned((size_t)rows16);
        L->limits = aligned(4 * (size_t)rows16);
        L->offset = aligned(4 * (size_t)rows16);
        L->above = aligned(2 * (size_t)(rows16 / 16));
        L->below = aligned(2 * (size_t)(rows16 / 16));
        L->plus = aligned(2 * (size_t)(rows16 / 16));
        if (!L->bits || !L->modes || !L->limits || !L->offset || !L->above || !L->below || !L->plus) {
            PyBuffer_Release(&vb); PyBuffer_Release(&vm); PyBuffer_Release(&vl); Py_DECREF(item);
            PyErr_NoMemory();
            return -1;
        }
        const unsigned char *src = vb.buf;
        for (int u = 0; u < L->fan_out; u++) {
            int ones = 0;
            for (int b = 0; b < row; b++) {
                unsigned char v = reverse_bits(src[(size_t)u * row + b]);
                if (8 * b + 8 > L->fan_in) v &= (unsigned char)((1u << (L->fan_in - 8 * b)) - 1);  /* padding: 0 */
                L->bits[(size_t)u * L->stride + b] = v;
                ones += __builtin_popcount(v);
            }
            L->offset[u] = 255 * (L->fan_in - 2 * ones);
        }
        if (k == 0 && chosen == PATH_AVX512) {  /* ±1 bytes for batches (block1_avx512_four) */
            size_t row8 = (size_t)L->stride * 8;
            L->signs = aligned(row8 * rows16);
            if (!L->signs) {
                PyBuffer_Release(&vb); PyBuffer_Release(&vm); PyBuffer_Release(&vl); Py_DECREF(item);
                PyErr_NoMemory();
                return -1;
            }
            for (int u = 0; u < L->fan_out; u++)
                for (int i = 0; i < L->fan_in; i++)
                    L->signs[u * row8 + i] = (int8_t)(((L->bits[(size_t)u * L->stride + (i >> 3)] >> (i & 7)) & 1) ? 1 : -1);
        }
        memcpy(L->modes, vm.buf, (size_t)L->fan_out);
        memcpy(L->limits, vl.buf, 4 * (size_t)L->fan_out);
        for (int u = L->fan_out; u < rows16; u++) L->modes[u] = MINUS;  /* padding units never fire */
        for (int u = 0; u < rows16; u++) {
            uint16_t bit = (uint16_t)(1u << (u & 15));
            if (L->modes[u] == ABOVE) L->above[u >> 4] |= bit;
            if (L->modes[u] == BELOW) L->below[u >> 4] |= bit;
            if (L->modes[u] == PLUS) L->plus[u >> 4] |= bit;
        }
        PyBuffer_Release(&vb); PyBuffer_Release(&vm); PyBuffer_Release(&vl);
        Py_DECREF(item);
    }
    /* pixels are padded to whole 64-byte chunks: 8 regions of max_stride bytes hold them */
    if (self->max_stride * 8 < (self->input_size + 63) / 64 * 64) {
        PyErr_Format(PyExc_ValueError, "input_size=%d is too large; accepted: up to %d",
                     self->input_size, self->max_stride * 8);
        return -1;
    }
    int last = dims[n_sizes - 2];
    Py_buffer vo;
    if (bytes_of(output, "output", 4 * (Py_ssize_t)last * self->n_classes, &vo) < 0) return -1;
    self->output = aligned(vo.len);
    self->bound = aligned(4 * (size_t)self->n_classes);
    if (!self->output || !self->bound) { PyBuffer_Release(&vo); PyErr_NoMemory(); return -1; }
    memcpy(self->output, vo.buf, (size_t)vo.len);
    PyBuffer_Release(&vo);
    /* any float32 summation of n terms errs by at most n·2⁻²⁴·Σ|w| (to first order): twice that */
    for (int j = 0; j < self->n_classes; j++) {
        double total = 0;
        for (int i = 0; i < last; i++) total += fabs(self->output[(size_t)i * self->n_classes + j]);
        self->bound[j] = (float)(2.0 * (last + 1) * ldexp(total, -24) + 1e-30);
    }
    return 0;
}

static PyObject *Kernel_predict(Kernel *self, PyObject *args) {
    Py_buffer images, out;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*w*|i", &images, &out, &threads)) return NULL;
    Py_ssize_t n = images.len / self->input_size;
    if (images.len != n * self->input_size || out.len != n * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "images has %zd bytes and out %zd; accepted: N × %d uint8 and N int64",
                     images.len, out.len, self->input_size);
        PyBuffer_Release(&images); PyBuffer_Release(&out);
        return NULL;
    }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (n < 64 * threads) threads = (int)(n / 64) > 1 ? (int)(n / 64) : 1;  /* small batches: one thread */
    Work jobs[64];
    pthread_t ids[64];
    int started[64] = {0};
    int flagged = 0, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < threads; t++) {
        jobs[t] = (Work){self, images.buf, out.buf, n * t / threads, n * (t + 1) / threads, 0, 0};
        if (t > 0) started[t] = pthread_create(&ids[t], NULL, work, &jobs[t]) == 0;
    }
    work(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else work(&jobs[t]);  /* no thread to be had: this one does it */
    }
    for (int t = 0; t < threads; t++) { flagged += jobs[t].flagged; failed |= jobs[t].failed; }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&images); PyBuffer_Release(&out);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromLong(flagged);
}

/* hidden(images, out): the last hidden block's ±1 outputs (N × units int8), for the images whose
   output layer the caller computes itself */
static PyObject *Kernel_hidden(Kernel *self, PyObject *args) {
    Py_buffer images, out;
    if (!PyArg_ParseTuple(args, "y*w*", &images, &out)) return NULL;
    int units = self->layers[self->n_layers - 1].fan_out;
    Py_ssize_t n = images.len / self->input_size;
    if (images.len != n * self->input_size || out.len != n * units) {
        PyErr_Format(PyExc_ValueError, "images has %zd bytes and out %zd; accepted: N × %d uint8 and N × %d int8",
                     images.len, out.len, self->input_size, units);
        PyBuffer_Release(&images); PyBuffer_Release(&out);
        return NULL;
    }
    uint8_t *buffers = aligned(BUFFER_BYTES(self));
    if (!buffers) { PyBuffer_Release(&images); PyBuffer_Release(&out); return PyErr_NoMemory(); }
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t *x = last_hidden(self, (const uint8_t *)images.buf + (size_t)i * self->input_size, buffers);
        int8_t *y = (int8_t *)out.buf + (size_t)i * units;
        for (int u = 0; u < units; u++) y[u] = ((x[u >> 3] >> (u & 7)) & 1) ? 1 : -1;
    }
    free(buffers);
    PyBuffer_Release(&images); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *Kernel_path(Kernel *self, void *closure) {
    return PyUnicode_FromString(PATH_NAMES[self->path]);
}

static PyMethodDef Kernel_methods[] = {
    {"predict", (PyCFunction)Kernel_predict, METH_VARARGS,
     "predict(images, out, threads=1) -> the number of images flagged -1 (a near tie: the caller decides)"},
    {"hidden", (PyCFunction)Kernel_hidden, METH_VARARGS,
     "hidden(images, out): the last hidden block's ±1 outputs (N × units int8)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Kernel_getset[] = {{"path", (getter)Kernel_path, NULL, "the kernel path in use", NULL},
                                      {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bnnlib._binary.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
    .tp_getset = Kernel_getset,
    .tp_doc = "A packed fully binary MLP computed on its bits (bnnlib.binary)",
};

static PyObject *available_paths(PyObject *module, PyObject *unused) {
    PyObject *list = PyList_New(0);
    for (int p = PATH_AVX512; p >= PATH_GENERIC; p--)
        if (path_available(p)) {
            PyObject *name = PyUnicode_FromString(PATH_NAMES[p]);
            PyList_Append(list, name);
            Py_DECREF(name);
        }
    return list;
}

static PyMethodDef module_methods[] = {
    {"available_paths", available_paths, METH_NOARGS, "the kernel paths this processor runs, fastest first"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "bnnlib._binary",
                                    "Inference of packed fully binary MLPs on their bits", -1, module_methods};

PyMODINIT_FUNC PyInit__binary(void) {
    if (PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
