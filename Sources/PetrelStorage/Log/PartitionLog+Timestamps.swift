import NIOCore
import PetrelProtocol

/// Offset lookups by record timestamp (ListOffsets), through each segment's time index.
extension PartitionLog {
    public struct TimestampedOffset: Sendable, Hashable {
        public var offset: Int64
        public var timestamp: Int64

        public init(offset: Int64, timestamp: Int64) {
            self.offset = offset
            self.timestamp = timestamp
        }
    }

    /// The first record whose timestamp is at or after `target`, or nil if every record is older.
    public func firstOffset(atOrAfter target: Int64) throws -> TimestampedOffset? {
        // Candidate segments are those whose largest timestamp reaches the target, oldest first.
        let candidates: [(SegmentReader, start: Int, limit: Int)] = try state.withLock { state throws in
            try state.segments.compactMap { segment in
                guard segment.maxTimestamp >= target else { return nil }
                let from = segment.timeIndex.lastEntry(before: target).map {
                    segment.baseOffset + Int64($0.relativeOffset)
                }
                let start = from.flatMap { segment.offsetIndex.floorEntry(offset: $0) }.map { Int($0.position) } ?? 0
                return (try segment.reader, start, segment.size)
            }
        }
        for (reader, start, limit) in candidates {
            var position = start
            while position < limit, let header = try reader.readHeader(at: position) {
                if header.maxTimestamp >= target,
                    let match = try records(of: header, at: position, in: reader).first(where: {
                        $0.timestamp >= target
                    })
                {
                    return TimestampedOffset(offset: match.offset, timestamp: match.timestamp)
                }
                position += header.totalSize
            }
        }
        return nil
    }

    /// The first record carrying the largest timestamp in the log, or nil if the log is empty.
    public func offsetOfMaxTimestamp() throws -> TimestampedOffset? {
        let found: (SegmentReader, start: Int, limit: Int, batchOffset: Int64, timestamp: Int64)? = try state.withLock {
            state throws in
            var best: LogSegment?
            for segment in state.segments where segment.maxTimestamp >= 0 {
                if best == nil || segment.maxTimestamp > best!.maxTimestamp { best = segment }
            }
            guard let best else { return nil }
            let start = best.offsetIndex.floorEntry(offset: best.offsetOfMaxTimestamp).map { Int($0.position) } ?? 0
            return (try best.reader, start, best.size, best.offsetOfMaxTimestamp, best.maxTimestamp)
        }
        guard let (reader, start, limit, batchOffset, timestamp) = found else { return nil }
        var position = start
        while position < limit, let header = try reader.readHeader(at: position) {
            if header.lastOffset >= batchOffset, header.maxTimestamp >= timestamp,
                let match = try records(of: header, at: position, in: reader).first(where: {
                    $0.timestamp == timestamp
                })
            {
                return TimestampedOffset(offset: match.offset, timestamp: match.timestamp)
            }
            position += header.totalSize
        }
        return nil
    }

    private func records(of header: RecordBatchHeader, at position: Int, in reader: SegmentReader) throws -> [Record] {
        let body = try reader.read(
            position: position + RecordBatchHeader.size,
            length: header.totalSize - RecordBatchHeader.size
        )
        return try RecordBatchDecoder.decodeRecords(header: header, body: body)
    }
}
