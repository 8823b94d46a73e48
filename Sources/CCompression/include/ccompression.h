#ifndef CCOMPRESSION_H
#define CCOMPRESSION_H

#include <stddef.h>
#include <stdint.h>

/// Kafka's codec numbers (record batch attributes bits 0-2).
enum petrel_codec {
    PETREL_CODEC_GZIP = 1,
    PETREL_CODEC_SNAPPY = 2,
    PETREL_CODEC_LZ4 = 3,
    PETREL_CODEC_ZSTD = 4,
};

enum petrel_compression_status {
    PETREL_COMPRESSION_OK = 0,
    /// The input is not valid data of this codec (corrupt or truncated).
    PETREL_COMPRESSION_CORRUPT = 1,
    /// The output would exceed the limit given.
    PETREL_COMPRESSION_TOO_LARGE = 2,
    PETREL_COMPRESSION_NO_MEMORY = 3,
    PETREL_COMPRESSION_UNKNOWN_CODEC = 4,
};

/// Compresses `length` bytes in Kafka's framing for the codec (gzip: RFC 1952; snappy: xerial framing,
/// as the Java client writes; lz4: the LZ4 frame format; zstd: a zstd frame). On success `*output`
/// is a buffer from malloc holding `*output_length` bytes, for the caller to free with free().
int petrel_compress(int codec, const uint8_t *input, size_t length, uint8_t **output, size_t *output_length);

/// Decompresses what any Kafka client writes for the codec (snappy: xerial-framed or raw). Fails with
/// PETREL_COMPRESSION_TOO_LARGE rather than produce more than `limit` bytes.
int petrel_decompress(int codec, const uint8_t *input, size_t length, size_t limit, uint8_t **output,
                      size_t *output_length);

#endif
