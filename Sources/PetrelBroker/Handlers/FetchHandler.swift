import NIOCore
import PetrelProtocol
import PetrelStorage

/// Fetch (1), v4–12: reads whole batches for every requested partition and long-polls: a fetch that
/// finds fewer than `min_bytes` parks until an append to one of its partitions or `max_wait_ms`.
/// Fetch sessions are not kept: the answer's session id is always 0, so clients send full fetches.
struct FetchHandler: FrameRequestHandler {
    let versions: ClosedRange<Int16> = 4...12
    let broker: BrokerState

    /// isolation_level 1: only records below the last stable offset, with the aborted transactions.
    static let readCommitted: Int8 = 1

    private struct Read {
        var topics: [FetchResponseWriter.Topic]
        var bytes: Int
        /// Records in the batches read (whole batches are sent, so this may include a few before the
        /// fetch offset).
        var records: Int64
        var hasError: Bool
        /// Each readable partition with the offset seen (the log end, or the last stable offset for
        /// read_committed), to spot appends that race with parking.
        var watched: [(TopicPartition, PartitionLog, Int64)]
    }

    func respond(to request: FetchRequest, context: RequestContext) async throws -> ResponseFrame {
        let version = context.apiVersion
        let correlationID = context.header.correlationID
        if request.sessionId != 0 {
            return FetchResponseWriter.frame(
                correlationID: correlationID,
                version: version,
                errorCode: .fetchSessionIDNotFound,
                topics: [],
                allocator: context.connection.allocator
            )
        }
        let deadline = NIODeadline.now() + .milliseconds(Int64(max(0, request.maxWaitMs)))
        var parkedSince: ContinuousClock.Instant?
        while true {
            let read = readAll(request)
            let done =
                read.bytes >= Int(request.minBytes) || read.hasError || read.watched.isEmpty
                || NIODeadline.now() >= deadline
                || broker.connections.isDraining
            if done || Task.isCancelled {
                if let parkedSince { broker.metrics.fetchWait.record(duration: ContinuousClock.now - parkedSince) }
                broker.metrics.fetchedRecords.increment(by: read.records)
                let frame = FetchResponseWriter.frame(
                    correlationID: correlationID,
                    version: version,
                    topics: read.topics,
                    allocator: context.connection.allocator
                )
                return try await sendable(frame, sendsFiles: context.connection.sendsFiles)
            }
            let watched = read.watched
            let readCommitted = request.isolationLevel == Self.readCommitted
            parkedSince = parkedSince ?? ContinuousClock.now
            await broker.appendNotifier.waitForAppend(
                to: watched.map(\.0),
                deadline: deadline,
                eventLoop: context.connection.eventLoop,
                hasNewData: {
                    watched.contains { readCommitted ? $0.1.lastStableOffset > $0.2 : $0.1.logEndOffset > $0.2 }
                }
            )
        }
    }

    /// The frame as it can go out: with sendfile when the connection sends files and the allowance has a
    /// descriptor for each file part; otherwise (TLS, or too many descriptors held by other responses)
    /// with the records read into memory here, on the I/O thread pool.
    private func sendable(_ frame: ResponseFrame, sendsFiles: Bool) async throws -> ResponseFrame {
        let fileParts = frame.fileParts
        guard fileParts > 0 else { return frame }
        if sendsFiles, let grant = broker.sendfileAllowance.grant(fileParts) {
            var frame = frame
            frame.sendfileGrant = grant
            return frame
        }
        if sendsFiles { broker.metrics.fetchesReadIntoMemory.increment() }
        return try await frame.readingFiles(on: broker.threadPool)
    }

    private func readAll(_ request: FetchRequest) -> Read {
        // The broker's own limit bounds what one response holds, whatever the client asks for (a TLS
        // connection reads it all into memory).
        var remaining = min(request.maxBytes > 0 ? Int(request.maxBytes) : Int.max, broker.configuration.fetchMaxBytes)
        var read = Read(topics: [], bytes: 0, records: 0, hasError: false, watched: [])
        for topic in request.topics {
            var partitions: [FetchResponseWriter.Partition] = []
            partitions.reserveCapacity(topic.partitions.count)
            for wanted in topic.partitions {
                var result = FetchResponseWriter.Partition(
                    index: wanted.partition,
                    errorCode: .none,
                    highWatermark: -1,
                    logStartOffset: -1,
                    records: nil
                )
                guard let log = broker.logs.partition(topic: topic.topic, partition: wanted.partition) else {
                    result.errorCode = .unknownTopicOrPartition
                    read.hasError = true
                    partitions.append(result)
                    continue
                }
                if wanted.currentLeaderEpoch > PartitionLog.leaderEpoch {
                    result.errorCode = .unknownLeaderEpoch
                    read.hasError = true
                    partitions.append(result)
                    continue
                }
                do {
                    // Past the response limit only offsets are reported; the client fetches again.
                    let limit = min(Int(max(0, wanted.partitionMaxBytes)), remaining)
                    let data = try log.read(
                        from: wanted.fetchOffset,
                        maxBytes: limit,
                        minOneBatch: read.bytes == 0,
                        readCommitted: request.isolationLevel == Self.readCommitted
                    )
                    result.highWatermark = data.highWatermark
                    result.logStartOffset = data.logStartOffset
                    result.lastStableOffset = data.lastStableOffset
                    result.abortedTransactions = data.abortedTransactions
                    result.records = data.slice
                    let length = data.slice?.length ?? 0
                    if let slice = data.slice { read.records += slice.nextOffset - slice.firstOffset }
                    read.bytes += length
                    remaining -= min(remaining, length)
                    // A read_committed fetch waits for the last stable offset to move, not the log end.
                    let seen = request.isolationLevel == Self.readCommitted ? data.lastStableOffset : data.highWatermark
                    read.watched.append((TopicPartition(topic.topic, wanted.partition), log, seen))
                } catch PartitionLog.ReadError.offsetOutOfRange(let start, let end) {
                    result.errorCode = .offsetOutOfRange
                    result.highWatermark = end
                    result.logStartOffset = start
                    read.hasError = true
                } catch {
                    broker.logger.error(
                        "fetch read failed",
                        metadata: ["partition": "\(topic.topic)-\(wanted.partition)", "error": "\(error)"]
                    )
                    result.errorCode = .kafkaStorageError
                    read.hasError = true
                }
                partitions.append(result)
            }
            read.topics.append(FetchResponseWriter.Topic(name: topic.topic, partitions: partitions))
        }
        return read
    }
}
