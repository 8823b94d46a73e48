import PetrelProtocol

/// ApiVersions (18): the APIs and versions this broker serves. Default-valued tagged fields (features)
/// are left out, as Apache Kafka does: librdkafka 2.0.2 mis-skips them.
struct ApiVersionsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...4
    let advertised: [(key: APIKey, versions: ClosedRange<Int16>)]

    func handle(_ request: ApiVersionsRequest, context: RequestContext) async throws -> ApiVersionsResponse? {
        ApiVersionsResponse(
            errorCode: ErrorCode.none,
            apiKeys: advertised.map {
                .init(apiKey: $0.key.rawValue, minVersion: $0.versions.lowerBound, maxVersion: $0.versions.upperBound)
            },
            throttleTimeMs: 0
        )
    }
}
