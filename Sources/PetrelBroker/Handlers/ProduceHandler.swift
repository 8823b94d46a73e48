import PetrelProtocol
import PetrelStorage

/// Produce (0): validate each partition's batch (header and CRC only), assign offsets, append.
/// v0–2 are advertised because librdkafka 2.0.2 only compresses if Produce v0 is in range; their legacy
/// message sets are refused per partition with UNSUPPORTED_FOR_MESSAGE_FORMAT.
struct ProduceHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...9
    let broker: BrokerState

    /// acks=0 requests that fail cannot be answered; Kafka closes the connection so the client notices.
    struct UnacknowledgedProduceFailed: Error, CustomStringConvertible {
        var description: String
    }

    func handle(_ request: ProduceRequest, context: RequestContext) async throws -> ProduceResponse? {
        let validAcks = [-1, 0, 1].contains(request.acks)
        var responses: [ProduceResponse.TopicProduceResponse] = []
        // Appends under the `always` flush policy, answered only once an fsync covers them.
        var awaitingFsync: [(topic: Int, partition: Int, log: PartitionLog, lastOffset: Int64)] = []
        for topic in request.topicData {
            var partitions: [ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = []
            for data in topic.partitionData {
                guard validAcks else {
                    partitions.append(
                        failure(data.index, .invalidRequiredAcks, "acks must be -1, 0 or 1, got \(request.acks)")
                    )
                    continue
                }
                let (result, fsyncDue) = append(data, topic: topic.name, acks: request.acks, context: context)
                if let (log, lastOffset) = fsyncDue, request.acks != 0 {
                    awaitingFsync.append((responses.count, partitions.count, log, lastOffset))
                }
                partitions.append(result)
            }
            responses.append(.init(name: topic.name, partitionResponses: partitions))
        }
        for pending in awaitingFsync {
            do {
                try await pending.log.waitUntilDurable(through: pending.lastOffset)
            } catch {
                let index = responses[pending.topic].partitionResponses[pending.partition].index
                responses[pending.topic].partitionResponses[pending.partition] = failure(
                    index,
                    .kafkaStorageError,
                    "fsync failed: \(error)"
                )
            }
        }
        if request.acks == 0 {
            let failures = responses.flatMap { topic in
                topic.partitionResponses.filter { $0.errorCode != ErrorCode.none }.map {
                    "\(topic.name)-\($0.index): \($0.errorMessage ?? "")"
                }
            }
            if !failures.isEmpty { throw UnacknowledgedProduceFailed(description: failures.joined(separator: "; ")) }
            return nil
        }
        return ProduceResponse(responses: responses, throttleTimeMs: 0)
    }

    /// Appends one partition's batch; when the topic flushes every write, also returns the log and the
    /// batch's last offset to wait on.
    private func append(
        _ data: ProduceRequest.TopicProduceData.PartitionProduceData,
        topic: String,
        acks: Int16,
        context: RequestContext
    ) -> (ProduceResponse.TopicProduceResponse.PartitionProduceResponse, (PartitionLog, Int64)?) {
        guard let log = broker.logs.partition(topic: topic, partition: data.index) else {
            return (failure(data.index, .unknownTopicOrPartition, "\(topic)-\(data.index) does not exist"), nil)
        }
        // Only the group coordinator writes __consumer_offsets, as in Kafka.
        if TopicName.isInternal(topic) {
            return (failure(data.index, .invalidTopic, "cannot append to the internal topic \(topic)"), nil)
        }
        let config = log.config
        // One broker is one in-sync replica: a topic that asks for more refuses acks=all, as Kafka does.
        let minInsync = config.minInsyncReplicas
        if acks == -1, minInsync > 1 {
            let message = "min.insync.replicas is \(minInsync) and only 1 replica (this broker) is in sync"
            return (failure(data.index, .notEnoughReplicas, message), nil)
        }
        guard let records = data.records else {
            return (failure(data.index, .invalidRecord, "no records"), nil)
        }
        do {
            var header = try RecordBatchValidator.validateProduced(
                records,
                maxBatchBytes: config.maxMessageBytes,
                allowZstd: context.apiVersion >= 7,
                requireKeys: config.compacts
            )
            let now = wallClockMillis()
            var batch = records
            if config.timestampType == .logAppendTime {
                (batch, header) = RecordBatchHeader.stampingLogAppendTime(records, header: header, now: now)
            } else if let reason = config.timestampRefusal(
                baseTimestamp: header.baseTimestamp,
                maxTimestamp: header.maxTimestamp,
                now: now
            ) {
                return (failure(data.index, .invalidTimestamp, reason), nil)
            }
            // A transactional batch belongs to an open transaction that named this partition first.
            if header.attributes.isTransactional,
                let refusal = broker.transactions.produceRefusal(
                    producerID: header.producerID,
                    producerEpoch: header.producerEpoch,
                    partition: TopicPartition(topic, data.index)
                )
            {
                let message = "producer \(header.producerID) has no open transaction with \(topic)-\(data.index)"
                return (failure(data.index, refusal, message), nil)
            }
            let appended = try log.append(batch, header: header, now: now)
            if appended.isDuplicate {
                context.logger.debug(
                    "answered a retried batch with its original offset",
                    metadata: [
                        "partition": "\(topic)-\(data.index)", "producer": "\(header.producerID)",
                        "offset": "\(appended.baseOffset)",
                    ]
                )
            } else {
                broker.appendNotifier.notifyAppend(to: TopicPartition(topic, data.index))
                broker.metrics.producedRecords.increment(by: Int64(header.lastOffsetDelta) + 1)
            }
            let result = ProduceResponse.TopicProduceResponse.PartitionProduceResponse(
                index: data.index,
                errorCode: ErrorCode.none,
                baseOffset: appended.baseOffset,
                logAppendTimeMs: config.timestampType == .logAppendTime ? header.maxTimestamp : -1,
                logStartOffset: appended.logStartOffset
            )
            return (result, config.flushPolicy == .always ? (log, appended.lastOffset) : nil)
        } catch let error as PartitionLog.ProducerSequenceError {
            return (failure(data.index, error.code, error.message), nil)
        } catch let error as RecordBatchError {
            context.logger.debug(
                "refused a batch",
                metadata: ["partition": "\(topic)-\(data.index)", "error": "\(error)"]
            )
            return (failure(data.index, error.code, error.message), nil)
        } catch {
            context.logger.error(
                "append failed",
                metadata: ["partition": "\(topic)-\(data.index)", "error": "\(error)"]
            )
            return (failure(data.index, .kafkaStorageError, "\(error)"), nil)
        }
    }

    private func failure(
        _ index: Int32,
        _ code: ErrorCode,
        _ message: String
    ) -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
        .init(
            index: index,
            errorCode: code,
            baseOffset: -1,
            logAppendTimeMs: -1,
            logStartOffset: -1,
            errorMessage: message
        )
    }
}
