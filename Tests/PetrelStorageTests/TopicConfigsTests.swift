import PetrelStorage
import Testing

@Suite("Topic configs")
struct TopicConfigsTests {
    @Test("every config's own default passes its own check, and names are unique")
    func defaultsAreValid() {
        let broker = LogConfig()
        #expect(Set(TopicConfigs.all.map(\.name)).count == TopicConfigs.all.count)
        for definition in TopicConfigs.all {
            let value = definition.value(defaultingTo: broker)
            if definition.type == .list && value.isEmpty { continue }
            #expect(definition.refusal(of: value) == nil, "\(definition.name)=\(value)")
        }
        #expect(TopicConfigs.all.count >= 35, "every topic config Kafka defines, and flush.policy")
    }

    @Test("honoured configs change the log's settings; stored ones are validated and change nothing")
    func applying() throws {
        let config = try LogConfig().applying([
            "retention.ms": "1000", "segment.bytes": "65536", "flush.policy": "always", "min.insync.replicas": "2",
            "preallocate": "true", "unclean.leader.election.enable": "false", "segment.jitter.ms": "5",
        ])
        #expect(config.retentionMs == 1000 && config.segmentBytes == 65536 && config.flushPolicy == .always)
        #expect(config.minInsyncReplicas == 2)
        var expected = LogConfig()
        expected.retentionMs = 1000
        expected.segmentBytes = 65536
        expected.flushPolicy = .always
        expected.minInsyncReplicas = 2
        #expect(config == expected, "the stored-only configs changed nothing")
    }

    @Test("refusals name the key and say why")
    func refusals() {
        let cases: [(String, String, String)] = [
            ("retention.msx", "1", "invalid topic config retention.msx=1: Kafka defines no topic config of that name"),
            (
                "segment.bytes", "1",
                "invalid topic config segment.bytes=1: must be a whole number from 14 to 2147483647"
            ),
            ("cleanup.policy", "shred", "invalid topic config cleanup.policy=shred: must be delete, compact or both"),
            ("preallocate", "yes", "invalid topic config preallocate=yes: must be true or false"),
            (
                "min.cleanable.dirty.ratio", "2",
                "invalid topic config min.cleanable.dirty.ratio=2: must be a number from 0 to 1"
            ),
            (
                "compression.type", "gzip",
                "invalid topic config compression.type=gzip: batches are stored as produced; only producer is supported"
            ),
        ]
        for (name, value, message) in cases {
            #expect(throws: LogConfigError.self) { try LogConfig().applying([name: value]) }
            do {
                _ = try LogConfig().applying([name: value])
            } catch {
                #expect("\(error)" == message)
            }
        }
    }
}
