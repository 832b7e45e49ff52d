#ifndef SPOOL_CCRC32C_H
#define SPOOL_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli) with `length` bytes at `data`.
/// Start with `crc = 0`; the result of one call is the `crc` of the next.
uint32_t spool_crc32c_extend(uint32_t crc, const void *data, size_t length);

/// The same, always through the portable slicing-by-8 tables (for tests and benchmarks).
uint32_t spool_crc32c_extend_portable(uint32_t crc, const void *data, size_t length);

/// 1 when the hardware (SSE4.2) path is in use.
int spool_crc32c_is_hardware(void);

#endif
