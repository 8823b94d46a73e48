// Kafka's four batch codecs over the system libraries: zlib (gzip), snappy, lz4 (frame format), zstd.
#include "ccompression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

// A growable output buffer, bounded by a limit.
typedef struct {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
    size_t limit;
} output_buffer;

static int reserve(output_buffer *out, size_t extra) {
    if (out->length + extra > out->limit) return PETREL_COMPRESSION_TOO_LARGE;
    if (out->length + extra <= out->capacity) return PETREL_COMPRESSION_OK;
    size_t capacity = out->capacity ? out->capacity : 4096;
    while (capacity < out->length + extra) capacity *= 2;
    if (capacity > out->limit) capacity = out->limit;
    uint8_t *grown = realloc(out->bytes, capacity ? capacity : 1);
    if (!grown) return PETREL_COMPRESSION_NO_MEMORY;
    out->bytes = grown;
    out->capacity = capacity;
    return PETREL_COMPRESSION_OK;
}

static int finish(output_buffer *out, int status, uint8_t **output, size_t *output_length) {
    if (status != PETREL_COMPRESSION_OK) {
        free(out->bytes);
        return status;
    }
    *output = out->bytes ? out->bytes : malloc(1);
    *output_length = out->length;
    return *output ? PETREL_COMPRESSION_OK : PETREL_COMPRESSION_NO_MEMORY;
}

// MARK: gzip

static int gzip_compress(const uint8_t *input, size_t length, output_buffer *out) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    // windowBits 15 + 16: a gzip (RFC 1952) wrapper rather than zlib's.
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return PETREL_COMPRESSION_NO_MEMORY;
    int status = reserve(out, deflateBound(&stream, length));
    if (status == PETREL_COMPRESSION_OK) {
        stream.next_in = (Bytef *)input;
        stream.avail_in = (uInt)length;
        stream.next_out = out->bytes;
        stream.avail_out = (uInt)out->capacity;
        status = deflate(&stream, Z_FINISH) == Z_STREAM_END ? PETREL_COMPRESSION_OK : PETREL_COMPRESSION_NO_MEMORY;
        out->length = stream.total_out;
    }
    deflateEnd(&stream);
    return status;
}

static int gzip_decompress(const uint8_t *input, size_t length, output_buffer *out) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    // windowBits 15 + 32: accept a gzip or zlib header.
    if (inflateInit2(&stream, 15 + 32) != Z_OK) return PETREL_COMPRESSION_NO_MEMORY;
    stream.next_in = (Bytef *)input;
    stream.avail_in = (uInt)length;
    int status = PETREL_COMPRESSION_OK;
    for (;;) {
        status = reserve(out, length * 2 + 1024 < out->limit - out->length ? length * 2 + 1024 : out->limit - out->length);
        if (status != PETREL_COMPRESSION_OK) break;
        if (out->capacity == out->length) {
            status = PETREL_COMPRESSION_TOO_LARGE;
            break;
        }
        stream.next_out = out->bytes + out->length;
        stream.avail_out = (uInt)(out->capacity - out->length);
        int result = inflate(&stream, Z_NO_FLUSH);
        out->length = out->capacity - stream.avail_out;
        if (result == Z_STREAM_END) {
            // Several concatenated gzip members are one stream to Kafka's readers.
            if (stream.avail_in == 0) break;
            if (inflateReset(&stream) != Z_OK) {
                status = PETREL_COMPRESSION_CORRUPT;
                break;
            }
            continue;
        }
        if (result == Z_BUF_ERROR && stream.avail_in == 0) {
            status = PETREL_COMPRESSION_CORRUPT;  // input ended inside the stream: truncated
            break;
        }
        if (result != Z_OK && result != Z_BUF_ERROR) {
            status = PETREL_COMPRESSION_CORRUPT;
            break;
        }
    }
    inflateEnd(&stream);
    return status;
}

// MARK: snappy

// The xerial framing Kafka's Java client writes: magic, version, compatible version, then chunks of
// [big-endian int32 length][raw snappy block].
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
static const size_t xerial_block = 32 * 1024;

static void put_be32(uint8_t *at, uint32_t value) {
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

static uint32_t get_be32(const uint8_t *at) {
    return (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | (uint32_t)at[3];
}

static int snappy_block_decompress(const uint8_t *input, size_t length, output_buffer *out) {
    size_t size;
    if (snappy_uncompressed_length((const char *)input, length, &size) != SNAPPY_OK) return PETREL_COMPRESSION_CORRUPT;
    int status = reserve(out, size);
    if (status != PETREL_COMPRESSION_OK) return status;
    size_t produced = size;
    if (snappy_uncompress((const char *)input, length, (char *)out->bytes + out->length, &produced) != SNAPPY_OK)
        return PETREL_COMPRESSION_CORRUPT;
    out->length += produced;
    return PETREL_COMPRESSION_OK;
}

static int snappy_compress_framed(const uint8_t *input, size_t length, output_buffer *out) {
    int status = reserve(out, 16);
    if (status != PETREL_COMPRESSION_OK) return status;
    memcpy(out->bytes, xerial_magic, 8);
    put_be32(out->bytes + 8, 1);   // version
    put_be32(out->bytes + 12, 1);  // minimum compatible version
    out->length = 16;
    for (size_t offset = 0; offset < length || (length == 0 && offset == 0); offset += xerial_block) {
        size_t chunk = length - offset < xerial_block ? length - offset : xerial_block;
        size_t bound = snappy_max_compressed_length(chunk);
        status = reserve(out, 4 + bound);
        if (status != PETREL_COMPRESSION_OK) return status;
        size_t produced = bound;
        if (snappy_compress((const char *)input + offset, chunk, (char *)out->bytes + out->length + 4, &produced) != SNAPPY_OK)
            return PETREL_COMPRESSION_NO_MEMORY;
        put_be32(out->bytes + out->length, (uint32_t)produced);
        out->length += 4 + produced;
        if (length == 0) break;
    }
    return PETREL_COMPRESSION_OK;
}

static int snappy_decompress_any(const uint8_t *input, size_t length, output_buffer *out) {
    if (length < 16 || memcmp(input, xerial_magic, 8) != 0) return snappy_block_decompress(input, length, out);
    size_t offset = 16;
    while (offset < length) {
        if (length - offset < 4) return PETREL_COMPRESSION_CORRUPT;
        uint32_t chunk = get_be32(input + offset);
        offset += 4;
        if (chunk > length - offset) return PETREL_COMPRESSION_CORRUPT;
        int status = snappy_block_decompress(input + offset, chunk, out);
        if (status != PETREL_COMPRESSION_OK) return status;
        offset += chunk;
    }
    return PETREL_COMPRESSION_OK;
}

// MARK: lz4 (frame format, KIP-57)

static int lz4_compress_frame(const uint8_t *input, size_t length, output_buffer *out) {
    LZ4F_preferences_t preferences;
    memset(&preferences, 0, sizeof preferences);
    preferences.frameInfo.contentSize = length;
    size_t bound = LZ4F_compressFrameBound(length, &preferences);
    int status = reserve(out, bound);
    if (status != PETREL_COMPRESSION_OK) return status;
    size_t produced = LZ4F_compressFrame(out->bytes, bound, input, length, &preferences);
    if (LZ4F_isError(produced)) return PETREL_COMPRESSION_NO_MEMORY;
    out->length = produced;
    return PETREL_COMPRESSION_OK;
}

static int lz4_decompress_frame(const uint8_t *input, size_t length, output_buffer *out) {
    LZ4F_dctx *context;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&context, LZ4F_VERSION))) return PETREL_COMPRESSION_NO_MEMORY;
    size_t consumed_total = 0;
    int status = PETREL_COMPRESSION_OK;
    size_t hint = 1;
    while (hint != 0) {
        if (consumed_total == length) {
            status = PETREL_COMPRESSION_CORRUPT;  // the frame is not finished: truncated
            break;
        }
        status = reserve(out, 64 * 1024 < out->limit - out->length ? 64 * 1024 : out->limit - out->length);
        if (status != PETREL_COMPRESSION_OK) break;
        if (out->capacity == out->length) {
            status = PETREL_COMPRESSION_TOO_LARGE;
            break;
        }
        size_t produced = out->capacity - out->length;
        size_t consumed = length - consumed_total;
        hint = LZ4F_decompress(context, out->bytes + out->length, &produced, input + consumed_total, &consumed, NULL);
        if (LZ4F_isError(hint)) {
            status = PETREL_COMPRESSION_CORRUPT;
            break;
        }
        out->length += produced;
        consumed_total += consumed;
    }
    LZ4F_freeDecompressionContext(context);
    return status;
}

// MARK: zstd

static int zstd_compress_frame(const uint8_t *input, size_t length, output_buffer *out) {
    size_t bound = ZSTD_compressBound(length);
    int status = reserve(out, bound);
    if (status != PETREL_COMPRESSION_OK) return status;
    size_t produced = ZSTD_compress(out->bytes, bound, input, length, ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(produced)) return PETREL_COMPRESSION_NO_MEMORY;
    out->length = produced;
    return PETREL_COMPRESSION_OK;
}

static int zstd_decompress_stream(const uint8_t *input, size_t length, output_buffer *out) {
    ZSTD_DStream *stream = ZSTD_createDStream();
    if (!stream) return PETREL_COMPRESSION_NO_MEMORY;
    ZSTD_initDStream(stream);
    ZSTD_inBuffer in = {input, length, 0};
    int status = PETREL_COMPRESSION_OK;
    size_t hint = 1;
    while (in.pos < in.size || hint != 0) {
        status = reserve(out, 64 * 1024 < out->limit - out->length ? 64 * 1024 : out->limit - out->length);
        if (status != PETREL_COMPRESSION_OK) break;
        if (out->capacity == out->length) {
            status = PETREL_COMPRESSION_TOO_LARGE;
            break;
        }
        ZSTD_outBuffer target = {out->bytes + out->length, out->capacity - out->length, 0};
        size_t before = in.pos;
        hint = ZSTD_decompressStream(stream, &target, &in);
        if (ZSTD_isError(hint)) {
            status = PETREL_COMPRESSION_CORRUPT;
            break;
        }
        out->length += target.pos;
        if (hint != 0 && in.pos == in.size && target.pos == 0 && before == in.pos) {
            status = PETREL_COMPRESSION_CORRUPT;  // wants more input than there is: truncated
            break;
        }
    }
    ZSTD_freeDStream(stream);
    return status;
}

// MARK: Entry points

int petrel_compress(int codec, const uint8_t *input, size_t length, uint8_t **output, size_t *output_length) {
    output_buffer out = {NULL, 0, 0, (size_t)-1};
    int status;
    switch (codec) {
    case PETREL_CODEC_GZIP: status = gzip_compress(input, length, &out); break;
    case PETREL_CODEC_SNAPPY: status = snappy_compress_framed(input, length, &out); break;
    case PETREL_CODEC_LZ4: status = lz4_compress_frame(input, length, &out); break;
    case PETREL_CODEC_ZSTD: status = zstd_compress_frame(input, length, &out); break;
    default: status = PETREL_COMPRESSION_UNKNOWN_CODEC;
    }
    return finish(&out, status, output, output_length);
}

int petrel_decompress(int codec, const uint8_t *input, size_t length, size_t limit, uint8_t **output,
                      size_t *output_length) {
    output_buffer out = {NULL, 0, 0, limit};
    int status;
    switch (codec) {
    case PETREL_CODEC_GZIP: status = gzip_decompress(input, length, &out); break;
    case PETREL_CODEC_SNAPPY: status = snappy_decompress_any(input, length, &out); break;
    case PETREL_CODEC_LZ4: status = lz4_decompress_frame(input, length, &out); break;
    case PETREL_CODEC_ZSTD: status = zstd_decompress_stream(input, length, &out); break;
    default: status = PETREL_COMPRESSION_UNKNOWN_CODEC;
    }
    return finish(&out, status, output, output_length);
}
