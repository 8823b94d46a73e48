// swift-tools-version:6.1
import PackageDescription

let strictness: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Petrel",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PetrelProtocol", targets: ["PetrelProtocol"]),
        .library(name: "PetrelStorage", targets: ["PetrelStorage"]),
        .library(name: "PetrelBroker", targets: ["PetrelBroker"]),
        .library(name: "PetrelClient", targets: ["PetrelClient"]),
        .library(name: "PetrelSASL", targets: ["PetrelSASL"]),
        .executable(name: "petrel", targets: ["petrel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        // CRC-32C (Castagnoli) in C: SSE4.2 instruction when the CPU has it, slicing-by-8 otherwise.
        .target(name: "CCRC32C"),
        // Lowers a thread's CPU priority (the log cleaner's threads): gettid has no Swift binding.
        .target(name: "CThreadPriority"),
        // Kafka's batch codecs over the system libraries (Debian: zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev).
        .target(
            name: "CCompression",
            linkerSettings: [
                .linkedLibrary("z"), .linkedLibrary("snappy"), .linkedLibrary("lz4"), .linkedLibrary("zstd"),
            ]
        ),
        .target(
            name: "PetrelProtocol",
            dependencies: [
                "CCRC32C",
                "CCompression",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictness
        ),
        // SASL mechanisms (SCRAM-SHA-256, PLAIN), both sides, without I/O: shared by broker and client.
        .target(
            name: "PetrelSASL",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictness
        ),
        .target(
            name: "PetrelStorage",
            dependencies: [
                "PetrelProtocol",
                "CThreadPriority",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictness
        ),
        .target(
            name: "PetrelBroker",
            dependencies: [
                "PetrelProtocol",
                "PetrelStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "PetrelSASL",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictness
        ),
        .target(
            name: "PetrelClient",
            dependencies: [
                "PetrelProtocol",
                "PetrelSASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "petrel",
            dependencies: [
                "PetrelBroker",
                "PetrelClient",
                "PetrelSASL",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/PetrelCLI",
            swiftSettings: strictness
        ),
        // The example services (examples/README.md): an order service, two consumer-group workers and an
        // order-status service.
        .target(
            name: "OrderEvents",
            dependencies: ["PetrelClient"],
            path: "examples/OrderEvents",
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "order-service",
            dependencies: [
                "OrderEvents", "PetrelClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "examples/OrderService",
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "notification-worker",
            dependencies: [
                "OrderEvents", "PetrelClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "examples/NotificationWorker",
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "payment-worker",
            dependencies: [
                "OrderEvents", "PetrelClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "examples/PaymentWorker",
            swiftSettings: strictness
        ),
        // Each order's latest status on a compacted topic, restored as a table at start-up.
        .executableTarget(
            name: "order-status-service",
            dependencies: [
                "OrderEvents", "PetrelClient", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "examples/OrderStatus",
            swiftSettings: strictness
        ),
        // Writes Sources/PetrelProtocol/Generated from Kafka's JSON message schemas.
        .executableTarget(name: "petrel-codegen", path: "Sources/PetrelCodegen", swiftSettings: strictness),
        .testTarget(
            name: "PetrelProtocolTests",
            dependencies: ["PetrelProtocol", .product(name: "NIOTestUtils", package: "swift-nio")],
            resources: [.copy("Fixtures")],
            swiftSettings: strictness
        ),
        .testTarget(name: "PetrelSASLTests", dependencies: ["PetrelSASL"], swiftSettings: strictness),
        // What every test target shares: temporary folders.
        .target(name: "PetrelTestSupport", path: "Tests/PetrelTestSupport", swiftSettings: strictness),
        // What the broker and client tests share: an in-process broker and connections to it.
        .target(
            name: "PetrelBrokerTestSupport",
            dependencies: [
                "PetrelBroker", "PetrelClient", "PetrelTestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/PetrelBrokerTestSupport",
            swiftSettings: strictness
        ),
        .testTarget(
            name: "PetrelStorageTests",
            dependencies: [
                "PetrelStorage", "PetrelProtocol", "PetrelTestSupport",
                // A reference MD5 for the cleaner's own.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "PetrelBrokerTests",
            dependencies: [
                "PetrelBroker", "PetrelClient", "PetrelSASL", "PetrelTestSupport", "PetrelBrokerTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "PetrelClientTests",
            dependencies: [
                "PetrelClient", "PetrelBroker", "PetrelSASL", "PetrelTestSupport", "PetrelBrokerTestSupport",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictness
        ),
    ]
)
