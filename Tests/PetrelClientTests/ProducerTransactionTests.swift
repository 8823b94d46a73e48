import NIOCore
import PetrelProtocol
import Testing

@testable import PetrelClient

@Suite("Transactional producer state")
struct ProducerTransactionTests {
    let orders = TopicPartition("orders", 0)

    @Test("calls are allowed in order: init, begin, send (adding each partition once), commit, begin again")
    func order() throws {
        var transaction = ProducerTransaction(transactionalID: "worker")
        #expect(throws: KafkaClientError.self) { try transaction.begin() }
        transaction.initialized()
        #expect(throws: KafkaClientError.self) { _ = try transaction.checkSend(to: orders) }
        try transaction.begin()
        #expect(throws: KafkaClientError.self) { try transaction.begin() }
        #expect(try transaction.checkSend(to: orders))
        transaction.added(orders)
        #expect(try !transaction.checkSend(to: orders))
        #expect(try transaction.checkSendOffsets(group: "g"))
        transaction.addedGroup("g")
        #expect(try !transaction.checkSendOffsets(group: "g"))
        try transaction.checkCommit()
        transaction.ended()
        try transaction.begin()
        #expect(try transaction.checkSend(to: orders), "a new transaction adds its partitions again")
    }

    @Test("a failed record makes the transaction abort-only; fencing ends the producer")
    func failures() throws {
        var transaction = ProducerTransaction(transactionalID: "worker")
        transaction.initialized()
        try transaction.begin()
        transaction.failed(.timedOut("a batch"))
        #expect(throws: KafkaClientError.self) { try transaction.checkCommit() }
        try transaction.checkAbort()
        transaction.ended()
        try transaction.begin()
        transaction.failed(.broker(.producerFenced))
        #expect(throws: KafkaClientError.broker(.producerFenced)) { try transaction.checkAbort() }
        transaction.ended()
        #expect(throws: KafkaClientError.broker(.producerFenced)) { try transaction.begin() }
    }

    @Test("read_committed drops an aborted transaction's batches from its first offset to its marker, and every marker")
    func abortedFilter() throws {
        func batch(
            _ producer: Int64,
            _ offset: Int64,
            transactional: Bool = true,
            marker: ControlRecord.Kind? = nil
        )
            throws -> RecordBatch
        {
            var bytes: ByteBuffer
            if let marker {
                bytes = ControlRecord(kind: marker).batch(producerID: producer, producerEpoch: 0, timestamp: 1)
            } else {
                var builder = RecordBatchBuilder(
                    producerID: producer,
                    producerEpoch: 0,
                    baseSequence: 0,
                    isTransactional: transactional
                )
                builder.append(key: nil, value: ByteBuffer(string: "\(producer)@\(offset)"), timestamp: 1)
                bytes = try builder.build()
            }
            bytes.setInteger(offset, at: 0)
            return try #require(try RecordBatchDecoder.decodeBatches(bytes, verifyCRC: false).first)
        }
        var filter = AbortedTransactionFilter([(producerID: 7, firstOffset: 1)])
        let kept = try [
            batch(7, 0, transactional: false), batch(7, 1), batch(8, 2), batch(7, 3), batch(7, 4, marker: .abort),
            batch(7, 5), batch(8, 6, marker: .commit),
        ].filter { filter.keeps($0) }.map(\.header.baseOffset)
        #expect(kept == [0, 2, 5])
    }
}
