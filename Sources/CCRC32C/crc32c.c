// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by Kafka record batches.
// Uses the SSE4.2 crc32 instruction when the CPU has it (three streams at once on long inputs);
// otherwise slicing-by-8 tables.
#include "ccrc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <nmmintrin.h>
#define PETREL_HAVE_X86 1
#endif

static uint32_t table[8][256];
static int hardware = 0;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = table[0][crc & 0xff] ^ (crc >> 8);
            table[k][n] = crc;
        }
    }
}

static uint32_t extend_software(uint32_t crc, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^ table[5][(word >> 16) & 0xff] ^
              table[4][(word >> 24) & 0xff] ^ table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
              table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

// The crc32 instruction takes three cycles but can start one every cycle, so one dependent chain of
// them runs at a third of the possible speed. Long inputs are cut into three blocks whose CRCs are
// computed side by side, then joined: the CRC of A followed by B is the CRC of A advanced over |B|
// zero bytes, XOR the CRC of B alone (the raw register update is linear over GF(2)). Advancing over a
// fixed number of zero bytes is itself a linear map, tabulated bytewise below for the two block sizes.
enum { LONG_BLOCK = 8192, SHORT_BLOCK = 256 };
static uint32_t advance_long[4][256];
static uint32_t advance_short[4][256];

/// A 32x32 matrix over GF(2), as the images of the 32 basis vectors.
typedef struct {
    uint32_t column[32];
} gf2_matrix;

static uint32_t gf2_apply(const gf2_matrix *m, uint32_t v) {
    uint32_t result = 0;
    for (int i = 0; v != 0; i++, v >>= 1) {
        if (v & 1) result ^= m->column[i];
    }
    return result;
}

/// a after b.
static gf2_matrix gf2_compose(const gf2_matrix *a, const gf2_matrix *b) {
    gf2_matrix result;
    for (int i = 0; i < 32; i++) result.column[i] = gf2_apply(a, b->column[i]);
    return result;
}

/// The map that advances a raw CRC register over `length` zero bytes.
static gf2_matrix zeros_operator(size_t length) {
    gf2_matrix power;  // one zero bit, then squared up to one zero byte
    power.column[0] = 0x82F63B78u;
    for (int i = 1; i < 32; i++) power.column[i] = 1u << (i - 1);
    for (int i = 0; i < 3; i++) power = gf2_compose(&power, &power);
    gf2_matrix result;
    for (int i = 0; i < 32; i++) result.column[i] = 1u << i;
    for (; length != 0; length >>= 1) {
        if (length & 1) result = gf2_compose(&power, &result);
        power = gf2_compose(&power, &power);
    }
    return result;
}

static void build_advance_table(uint32_t table_out[4][256], size_t length) {
    gf2_matrix op = zeros_operator(length);
    for (int k = 0; k < 4; k++) {
        for (uint32_t v = 0; v < 256; v++) table_out[k][v] = gf2_apply(&op, v << (8 * k));
    }
}

static inline uint32_t advance(uint32_t table_in[4][256], uint32_t crc) {
    return table_in[0][crc & 0xff] ^ table_in[1][(crc >> 8) & 0xff] ^ table_in[2][(crc >> 16) & 0xff] ^
           table_in[3][crc >> 24];
}

#ifdef PETREL_HAVE_X86
#if defined(__x86_64__)
/// Three streams of `block` bytes each, side by side; returns the joined register and moves `*p`.
__attribute__((target("sse4.2"))) static inline uint64_t three_blocks(
    uint64_t crc, const uint8_t **p, size_t block, uint32_t table_in[4][256]) {
    const uint8_t *a = *p;
    const uint8_t *end = a + block;
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    do {
        uint64_t w0, w1, w2;
        memcpy(&w0, a, 8);
        memcpy(&w1, a + block, 8);
        memcpy(&w2, a + 2 * block, 8);
        c0 = _mm_crc32_u64(c0, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
        a += 8;
    } while (a < end);
    uint32_t joined = advance(table_in, (uint32_t)c0) ^ (uint32_t)c1;
    joined = advance(table_in, joined) ^ (uint32_t)c2;
    *p += 3 * block;
    return joined;
}
#endif

__attribute__((target("sse4.2"))) static uint32_t extend_hardware(uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
    uint64_t c = crc;
    while (n >= 3 * LONG_BLOCK) {
        c = three_blocks(c, &p, LONG_BLOCK, advance_long);
        n -= 3 * LONG_BLOCK;
    }
    while (n >= 3 * SHORT_BLOCK) {
        c = three_blocks(c, &p, SHORT_BLOCK, advance_short);
        n -= 3 * SHORT_BLOCK;
    }
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
#endif
    while (n--) {
        crc = _mm_crc32_u8(crc, *p++);
    }
    return crc;
}
#endif

static void initialise(void) {
    build_tables();
    build_advance_table(advance_long, LONG_BLOCK);
    build_advance_table(advance_short, SHORT_BLOCK);
    int found = 0;
#ifdef PETREL_HAVE_X86
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2)) {
        found = 1;
    }
#endif
    hardware = found;
}

int petrel_crc32c_is_hardware_accelerated(void) {
    pthread_once(&once, initialise);
    return hardware;
}

uint32_t petrel_crc32c_extend(uint32_t crc, const void *bytes, size_t length) {
    int hw = petrel_crc32c_is_hardware_accelerated();
    uint32_t c = ~crc;
#ifdef PETREL_HAVE_X86
    if (hw) {
        return ~extend_hardware(c, (const uint8_t *)bytes, length);
    }
#endif
    (void)hw;
    return ~extend_software(c, (const uint8_t *)bytes, length);
}

uint32_t petrel_crc32c_extend_portable(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&once, initialise);
    return ~extend_software(~crc, (const uint8_t *)bytes, length);
}
