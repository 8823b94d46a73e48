// swift-tools-version:6.1
// Benchmarks live in a package of their own, so the benchmark tooling stays out of the graph of
// anyone who depends on Petrel. Run from this folder: swift package benchmark
import PackageDescription

let package = Package(
    name: "PetrelBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Petrel", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "StorageBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PetrelStorage", package: "Petrel"),
                .product(name: "PetrelProtocol", package: "Petrel"),
            ],
            path: "Storage",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ProtocolBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PetrelProtocol", package: "Petrel"),
            ],
            path: "Protocol",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
