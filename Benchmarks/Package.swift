// swift-tools-version: 6.1
// chatd's micro-benchmarks (package-benchmark). A package of its own so that `swift build`/`swift test` of the
// root stay light: run from this folder with `swift package benchmark`.
import PackageDescription

let package = Package(
    name: "chatd-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        // name: keeps the path dependency working whatever the checkout's folder is called.
        .package(name: "chatd", path: "../"),
        // The default traits pull in a runtime interposer our package mirror lacks; malloc counting needs only this one.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ChatCoreBenchmarks",
            dependencies: [
                .product(name: "ChatCore", package: "chatd"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ChatCoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
