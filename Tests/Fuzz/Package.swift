// swift-tools-version:6.0
// libFuzzer targets, a package of their own because they are built with -sanitize=fuzzer (which
// brings its own main) and run by scripts/fuzz.sh, not by `swift test`.
import PackageDescription

let package = Package(
    name: "PetrelFuzz",
    dependencies: [
        .package(name: "Petrel", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzRequests",
            dependencies: [
                .product(name: "PetrelProtocol", package: "Petrel"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        )
    ]
)
