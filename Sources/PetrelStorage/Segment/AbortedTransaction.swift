/// An aborted transaction in one partition: read_committed consumers drop the producer's records from
/// `firstOffset` up to its abort marker at `lastOffset`.
public struct AbortedTransaction: Hashable, Sendable {
    public var producerID: Int64
    public var firstOffset: Int64
    /// The offset of the abort marker.
    public var lastOffset: Int64
    /// The partition's last stable offset once the abort was written.
    public var lastStableOffset: Int64

    public init(producerID: Int64, firstOffset: Int64, lastOffset: Int64, lastStableOffset: Int64) {
        self.producerID = producerID
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.lastStableOffset = lastStableOffset
    }
}
