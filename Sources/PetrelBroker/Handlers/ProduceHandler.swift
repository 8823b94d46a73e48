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
        var failures: [String] = []
        let responses = request.topicData.map { topic in
            ProduceResponse.TopicProduceResponse(
                name: topic.name,
                partitionResponses: topic.partitionData.map { data in
                    let result =
                        validAcks
                        ? append(data, topic: topic.name, context: context)
                        : failure(data.index, .invalidRequiredAcks, "acks must be -1, 0 or 1, got \(request.acks)")
                    if result.errorCode != ErrorCode.none.rawValue {
                        failures.append("\(topic.name)-\(data.index): \(result.errorMessage ?? "")")
                    }
                    return result
                })
        }
        if request.acks == 0 {
            if !failures.isEmpty { throw UnacknowledgedProduceFailed(description: failures.joined(separator: "; ")) }
            return nil
        }
        return ProduceResponse(responses: responses, throttleTimeMs: 0)
    }

    private func append(
        _ data: ProduceRequest.TopicProduceData.PartitionProduceData, topic: String, context: RequestContext
    ) -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
        guard let log = broker.logs.partition(topic: topic, partition: data.index) else {
            return failure(data.index, .unknownTopicOrPartition, "\(topic)-\(data.index) does not exist")
        }
        guard let records = data.records else {
            return failure(data.index, .invalidRecord, "no records")
        }
        do {
            let header = try RecordBatchValidator.validateProduced(records, maxBatchBytes: log.config.maxMessageBytes)
            let appended = try log.append(records, header: header, now: currentTimeMillis())
            broker.appendNotifier.notifyAppend(to: TopicPartition(topic, data.index))
            return .init(
                index: data.index, errorCode: ErrorCode.none.rawValue, baseOffset: appended.baseOffset, logAppendTimeMs: -1,
                logStartOffset: appended.logStartOffset)
        } catch let error as RecordBatchError {
            context.logger.debug(
                "refused a batch", metadata: ["partition": "\(topic)-\(data.index)", "error": "\(error)"])
            return failure(data.index, error.code, error.message)
        } catch {
            context.logger.error("append failed", metadata: ["partition": "\(topic)-\(data.index)", "error": "\(error)"])
            return failure(data.index, .kafkaStorageError, "\(error)")
        }
    }

    private func failure(
        _ index: Int32, _ code: ErrorCode, _ message: String
    ) -> ProduceResponse.TopicProduceResponse.PartitionProduceResponse {
        .init(index: index, errorCode: code.rawValue, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: -1, errorMessage: message)
    }
}
