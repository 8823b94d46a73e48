// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by Kafka record batches.
// Uses the SSE4.2 crc32 instruction when the CPU has it; otherwise slicing-by-8 tables.
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

#ifdef PETREL_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t extend_hardware(uint32_t crc, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
    uint64_t c = crc;
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
