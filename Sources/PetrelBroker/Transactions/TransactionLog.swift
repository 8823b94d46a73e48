import Dispatch
import Logging
import NIOCore
import PetrelProtocol
import PetrelStorage
import Synchronization

/// The transaction coordinator's durable state: an internal partition log (`<data>/__transaction_state`,
/// not a topic clients can see) of records keyed by transactional id whose values are
/// `TransactionMetadata`. Replayed at start, later records winning; compacted by the log cleaner's own
/// code (the log is a compacted partition), so it holds about one record per transactional id.
final class TransactionLog: Sendable {
    static let folderName = "__transaction_state"
    private let log: PartitionLog
    private let logger: Logger
    private let isCleaning = Atomic<Bool>(false)

    init(
        dataDirectory: String,
        config: LogConfig,
        cleanShutdown: Bool,
        logger: Logger,
        files: FileCache = .shared
    ) throws {
        var config = config
        config.compacts = true
        config.deletesByRetention = false
        config.segmentBytes = min(config.segmentBytes, 16 << 20)
        config.minCleanableDirtyRatio = 0.5
        self.logger = logger
        self.log = try PartitionLog(
            directory: dataDirectory + "/" + Self.folderName,
            topic: Self.folderName,
            partition: 0,
            config: config,
            cleanShutdown: cleanShutdown,
            logger: logger,
            files: files
        )
    }

    /// Every transactional id's last stored metadata.
    func replay() throws -> [TransactionMetadata] {
        var latest: [String: TransactionMetadata] = [:]
        try log.forEachRecord { _, record in
            guard var key = record.key, let id = key.readString(length: key.readableBytes) else { return }
            if let value = record.value {
                latest[id] = try TransactionMetadata.decode(transactionalID: id, from: value)
            } else {
                latest[id] = nil
            }
        }
        return Array(latest.values)
    }

    /// Stores `metadata` (durably, under the `always` flush policy, before returning).
    func write(_ metadata: TransactionMetadata) async throws {
        var builder = RecordBatchBuilder()
        builder.append(
            key: ByteBuffer(string: metadata.transactionalID),
            value: metadata.encode(),
            timestamp: wallClockMillis()
        )
        let batch = try builder.build()
        let appended = try log.append(
            batch,
            header: try RecordBatchValidator.validateProduced(batch),
            now: wallClockMillis()
        )
        if log.config.flushPolicy == .always { try await log.waitUntilDurable(through: appended.lastOffset) }
        cleanIfDirty()
    }

    /// Compacts the log on a background thread once enough of it is superseded records.
    private func cleanIfDirty() {
        guard log.cleanableSection(now: wallClockMillis())?.needsCleaning == true,
            isCleaning.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return }
        DispatchQueue.global(qos: .utility).async {
            do {
                _ = try self.log.clean(memoryBytes: 8 << 20, now: wallClockMillis())
            } catch {
                self.logger.error("compacting the transaction log failed", metadata: ["error": "\(error)"])
            }
            self.isCleaning.store(false, ordering: .releasing)
        }
    }

    func close() throws {
        try log.close()
    }
}
