import NIOCore
import NIOPosix

/// A plain HTTP/1.1 GET over loopback: the status code and body (the broker's metrics endpoint closes
/// after answering when asked to).
func httpGet(port: Int, path: String) async throws -> (status: Int, body: String) {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(
            ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        )
        var received = ByteBuffer()
        for try await var chunk in inbound { received.writeBuffer(&chunk) }
        let text = String(buffer: received)
        guard let headerEnd = text.range(of: "\r\n\r\n"),
            let status = Int(text.split(separator: " ").dropFirst().first ?? "")
        else { throw HTTPGetError(response: text) }
        return (status, String(text[headerEnd.upperBound...]))
    }
}

struct HTTPGetError: Error {
    var response: String
}

/// The value of one sample in Prometheus text format, found by its exact series text, e.g.
/// `petrel_requests_total{api="Produce"}`; nil if the series is absent.
func sampleValue(_ exposition: String, _ series: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}
