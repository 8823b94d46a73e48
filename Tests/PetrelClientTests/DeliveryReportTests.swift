import NIOCore
import PetrelClient
import PetrelProtocol
import Testing

@Suite("Delivery reports of fire-and-forget sends")
struct DeliveryReportTests {
    @Test(
        "every record is reported once, with its offset, and a record the broker refuses as a failure",
        .timeLimit(.minutes(1))
    )
    func everyRecordReportedOnce() async throws {
        try await TestCluster.withInProcessBroker { bootstrap in
            let accepted = TestCluster.uniqueTopic("reports")
            let tight = TestCluster.uniqueTopic("reports-tight")
            let admin = KafkaAdmin(bootstrap: [bootstrap])
            try await admin.createTopic(accepted, partitions: 1, replicationFactor: 1)
            try await admin.createTopic(
                tight,
                partitions: 1,
                replicationFactor: 1,
                configs: ["max.message.bytes": "512"]
            )
            await admin.close()
            let count = 5_000
            let reports = try await KafkaProducer.withProducer(TestCluster.producerConfiguration(bootstrap)) {
                producer in
                var ids: [UInt64] = []
                for index in 0..<count {
                    ids.append(
                        try await producer.send(
                            ProducerRecord(topic: accepted, value: ByteBuffer(string: "order \(index)"))
                        )
                    )
                }
                let refused = try await producer.send(
                    ProducerRecord(topic: tight, value: ByteBuffer(repeating: UInt8(ascii: "x"), count: 2_048))
                )
                var reports: [UInt64: DeliveryReport] = [:]
                for await report in producer.deliveryReports {
                    #expect(reports[report.id] == nil, "report \(report.id) arrived twice")
                    reports[report.id] = report
                    if reports.count == count + 1 { break }
                }
                return (ids, refused, reports)
            }
            let (ids, refused, byID) = reports
            #expect(Set(ids).count == count && !ids.contains(refused))
            for (index, id) in ids.enumerated() {
                let metadata = try #require(try? byID[id]?.result.get(), "record \(index) has no successful report")
                #expect(metadata.topic == accepted && metadata.partition == 0 && metadata.offset == Int64(index))
            }
            guard case .failure(let error) = byID[refused]?.result else {
                Issue.record("the oversized record was not reported as failed")
                return
            }
            #expect("\(error)".contains("\(ErrorCode.messageTooLarge)"), "\(error)")
        }
    }
}
