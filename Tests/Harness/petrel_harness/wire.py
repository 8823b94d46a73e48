"""The Kafka wire format, as far as Petrel's Python tests and benchmark drivers speak it.

One codec for the soak test (Tests/Load/soak.py), which talks to the broker over raw sockets so that a
thousand connections cost little, and for the benchmark's replaying broker
(Benchmarks/Drivers/replay_broker.py), which answers requests with recorded responses. It covers:

  * framing: reading one length-prefixed frame from an asyncio stream; writing a request with header
    v1 (the non-flexible one); a request's API key and version, the request with its correlation id
    blanked (to look it up), and a response with another request's correlation id patched in;
  * primitives: big-endian integers, strings, arrays and zigzag varints written; a `Cursor` reading
    them, and the flexible versions' unsigned varints, compact strings and tagged fields;
  * bodies: Produce v3, Fetch v4 and CreateTopics v4 requests written and their responses read; the
    fetch offset read from a Fetch request, v4 to v12;
  * record batches (magic 2, uncompressed): CRC-32C, writing a batch, finding the whole batches in a
    Fetch answer's records, and reading a batch's records after checking its CRC.

Anything malformed raises WireError.
"""
import asyncio
import struct

PRODUCE, FETCH, CREATE_TOPICS = 0, 1, 19
API_NAMES = {PRODUCE: "Produce", FETCH: "Fetch", CREATE_TOPICS: "CreateTopics"}
# The versions the body encoders and response decoders below speak.
PRODUCE_VERSION, FETCH_VERSION, CREATE_TOPICS_VERSION = 3, 4, 4


class WireError(ValueError):
    """Bytes that are not what the Kafka protocol says they should be."""


# --- CRC-32C (Castagnoli), which RecordBatch v2 carries -------------------------------------------

def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# The standard check value: a wrong table would make every batch fail the broker's CRC check, which
# is a confusing way to find out.
assert crc32c(b"123456789") == 0xE3069283, "CRC-32C self-check failed"


# --- Writing --------------------------------------------------------------------------------------

def int16(n):
    return struct.pack(">h", n)


def int32(n):
    return struct.pack(">i", n)


def int64(n):
    return struct.pack(">q", n)


def string(text):
    data = text.encode()
    return int16(len(data)) + data


def array(items):
    return int32(len(items)) + b"".join(items)


def varint(n):
    """A zigzag varint, as record fields use."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record(offset_delta, value):
    body = (b"\x00"                       # attributes
            + varint(0)                   # timestamp delta
            + varint(offset_delta)
            + varint(-1)                  # null key
            + varint(len(value)) + value
            + varint(0))                  # no headers
    return varint(len(body)) + body


def record_batch(values, timestamp_ms):
    """One uncompressed RecordBatch (magic 2) holding `values`, without a producer id."""
    after_crc = (int16(0)                            # attributes: no compression, create time
                 + int32(len(values) - 1)            # last offset delta
                 + int64(timestamp_ms) + int64(timestamp_ms)
                 + int64(-1) + int16(-1) + int32(-1)  # producer id, epoch, base sequence
                 + int32(len(values))
                 + b"".join(record(i, value) for i, value in enumerate(values)))
    # Batch length counts from the partition leader epoch on: epoch 4 + magic 1 + crc 4.
    return (int64(0) + int32(9 + len(after_crc)) + int32(-1) + b"\x02"
            + struct.pack(">I", crc32c(after_crc)) + after_crc)


def request_frame(api_key, version, correlation_id, client_id, body):
    """A length-prefixed request with header v1 (the non-flexible header)."""
    message = int16(api_key) + int16(version) + int32(correlation_id) + string(client_id) + body
    return int32(len(message)) + message


def produce_request(topic, partition, batch, acks=-1, timeout_ms=30_000):
    """A Produce v3 body: one batch for one partition; acks -1 waits for all in-sync replicas."""
    return (int16(-1)                    # null transactional id
            + int16(acks)
            + int32(timeout_ms)
            + array([string(topic) + array([int32(partition) + int32(len(batch)) + batch])]))


def fetch_request(topic, partition, offset, max_bytes):
    """A Fetch v4 body for one partition. Max wait 0: the broker answers at once with what is there,
    so a fetch never parks in a long poll."""
    return (int32(-1) + int32(0) + int32(1) + int32(max_bytes) + b"\x00"
            + array([string(topic) + array([int32(partition) + int64(offset) + int32(max_bytes)])]))


def create_topics_request(name, partitions, timeout_ms=30_000):
    """A CreateTopics v4 body: one topic, replication factor 1, no assignments or configs."""
    topic = string(name) + int32(partitions) + int16(1) + array([]) + array([])
    return array([topic]) + int32(timeout_ms) + b"\x00"


# --- Reading --------------------------------------------------------------------------------------

class Cursor:
    """Reads big-endian fields from `data` from `position` on, failing clearly on short data."""

    def __init__(self, data, position=0):
        self.data = data
        self.position = position

    def _unpack(self, fmt, size):
        if self.position + size > len(self.data):
            raise WireError(f"the data ends early, at byte {self.position} of {len(self.data)}")
        value = struct.unpack_from(fmt, self.data, self.position)[0]
        self.position += size
        return value

    def int8(self):
        return self._unpack(">b", 1)

    def int16(self):
        return self._unpack(">h", 2)

    def int32(self):
        return self._unpack(">i", 4)

    def int64(self):
        return self._unpack(">q", 8)

    def take(self, size):
        if size < 0 or self.position + size > len(self.data):
            raise WireError(f"a field of {size} bytes at byte {self.position} overruns the data")
        chunk = self.data[self.position:self.position + size]
        self.position += size
        return chunk

    def string(self):
        size = self.int16()
        return None if size < 0 else self.take(size).decode()

    def compact_string(self):
        """A flexible version's string: its length plus one as an unsigned varint, 0 for null."""
        size = self.uvarint() - 1
        return None if size < 0 else self.take(size).decode()

    def nullable_bytes(self):
        size = self.int32()
        return None if size < 0 else self.take(size)

    def uvarint(self):
        shift = result = 0
        while True:
            if self.position >= len(self.data):
                raise WireError(f"a varint runs past the end of the data at byte {self.position}")
            byte = self.data[self.position]
            self.position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def varint(self):
        """A zigzag varint, as record fields use."""
        result = self.uvarint()
        return (result >> 1) ^ -(result & 1)

    def tagged_fields(self):
        """Skips a flexible version's tagged fields."""
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())

    def end(self, what):
        if self.position != len(self.data):
            raise WireError(f"{what}: {len(self.data) - self.position} bytes left over after the last field")


async def read_frame(reader):
    """One length-prefixed frame (the length included) from an asyncio stream, or None at its end."""
    try:
        prefix = await reader.readexactly(4)
        return prefix + await reader.readexactly(struct.unpack(">i", prefix)[0])
    except asyncio.IncompleteReadError:
        return None


def request_api(frame):
    """(API key, version) of a request frame."""
    return struct.unpack_from(">hh", frame, 4)


def request_key(frame):
    """The request with its correlation id (bytes 8..12: after length, API key, version) blanked."""
    return frame[:8] + b"\0\0\0\0" + frame[12:]


def with_correlation_id(response, request):
    """A response frame answering `request` (its correlation id is the response's first field)."""
    return response[:4] + request[8:12] + response[8:]


def response_cursor(frame):
    """(correlation id, a cursor at the body) of a response frame with header v0."""
    cursor = Cursor(frame, 4)
    return cursor.int32(), cursor


def fetch_offset(frame):
    """The fetch offset of the first partition of a Fetch request frame, v4 to v12."""
    _, version = request_api(frame)
    if not 4 <= version <= 12:
        raise WireError(f"Fetch v{version}: only v4 to v12 are read")
    flexible = version >= 12
    cursor = Cursor(frame, 12)  # after length, API key, version and correlation id
    cursor.string()  # client id: a plain string in header v2 too
    if flexible:
        cursor.tagged_fields()
    cursor.take(4 * 4 + 1)  # replica id, max wait, min bytes, max bytes, isolation level
    if version >= 7:
        cursor.take(8)  # session id and epoch
    if flexible:
        cursor.uvarint()  # topic count
        cursor.compact_string()
        cursor.uvarint()  # partition count
    else:
        cursor.int32()
        cursor.string()
        cursor.int32()
    cursor.int32()  # partition index
    if version >= 9:
        cursor.int32()  # current leader epoch
    return cursor.int64()


def per_partition(cursor, partition):
    """A non-flexible array of topics, each an array of partitions: [(topic, *partition(cursor))]."""
    answers = []
    for _ in range(cursor.int32()):
        name = cursor.string()
        answers.extend((name, *partition(cursor)) for _ in range(cursor.int32()))
    return answers


def produce_response(cursor):
    """A Produce v3 response body: [(topic, partition, error code, base offset)]."""
    def partition(cursor):
        index, error, base_offset = cursor.int32(), cursor.int16(), cursor.int64()
        cursor.int64()  # log append time
        return index, error, base_offset

    answers = per_partition(cursor, partition)
    cursor.int32()  # throttle time
    cursor.end("Produce response")
    return answers


def fetch_response(cursor):
    """A Fetch v4 response body: [(topic, partition, error code, high watermark, records)]."""
    def partition(cursor):
        index, error, high_watermark = cursor.int32(), cursor.int16(), cursor.int64()
        cursor.int64()  # last stable offset
        cursor.take(16 * max(cursor.int32(), 0))  # aborted transactions: producer id, first offset
        return index, error, high_watermark, cursor.nullable_bytes() or b""

    cursor.int32()  # throttle time
    answers = per_partition(cursor, partition)
    cursor.end("Fetch response")
    return answers


def create_topics_response(cursor):
    """A CreateTopics v4 response body: [(topic, error code, error message)]."""
    cursor.int32()  # throttle time
    results = [(cursor.string(), cursor.int16(), cursor.string()) for _ in range(cursor.int32())]
    cursor.end("CreateTopics response")
    return results


def complete_batches(records):
    """(base offset, last offset, start, end) of each whole batch; a fetch may end in a partial one."""
    position = 0
    while position + 17 <= len(records):
        base_offset, length = struct.unpack_from(">qi", records, position)
        end = position + 12 + length
        if end > len(records):
            return
        magic = records[position + 16]
        if magic != 2:
            raise WireError(f"batch at offset {base_offset} has magic {magic}, not 2")
        last_delta = struct.unpack_from(">i", records, position + 23)[0]
        yield base_offset, base_offset + last_delta, position, end
        position = end


def decode_batch(records, start, end):
    """The (offset, value) records of one uncompressed batch, after checking its CRC."""
    base_offset = struct.unpack_from(">q", records, start)[0]
    stored_crc, attributes = struct.unpack_from(">Ih", records, start + 17)
    if crc32c(records[start + 21:end]) != stored_crc:
        raise WireError(f"batch at offset {base_offset} fails its CRC-32C")
    if attributes & 0x07:
        raise WireError(f"batch at offset {base_offset} is compressed (attributes {attributes:#x})")
    cursor = Cursor(records, start + 57)
    count = cursor.int32()
    decoded = []
    for _ in range(count):
        cursor.varint()  # record length
        cursor.int8()    # attributes
        cursor.varint()  # timestamp delta
        offset_delta = cursor.varint()
        key_length = cursor.varint()
        cursor.take(max(key_length, 0))
        value_length = cursor.varint()
        value = cursor.take(value_length) if value_length >= 0 else None
        for _ in range(cursor.varint()):  # headers
            cursor.take(cursor.varint())
            cursor.take(max(cursor.varint(), 0))
        decoded.append((base_offset + offset_delta, value))
    if cursor.position != end:
        raise WireError(f"batch at offset {base_offset}: its records do not fill its stated length")
    return decoded
