#ifndef CCRC32C_H
#define CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC-32C (Castagnoli) over `length` bytes. Start with crc = 0; the result is final
/// (pre- and post-inversion are applied inside), so calls can be chained: crc(a+b) == extend(extend(0,a),b).
uint32_t petrel_crc32c_extend(uint32_t crc, const void *bytes, size_t length);

/// The same, always with the table-driven (slicing-by-8) fallback: what CPUs without SSE4.2 run.
/// For tests and benchmarks of the fallback on machines that have the instruction.
uint32_t petrel_crc32c_extend_portable(uint32_t crc, const void *bytes, size_t length);

/// 1 when the SSE4.2 CRC32 instruction is used, 0 for the table-driven fallback.
int petrel_crc32c_is_hardware_accelerated(void);

#endif
