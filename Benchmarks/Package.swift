// swift-tools-version: 6.1
// Micro-benchmarks for SpoolLog and SpoolMatching, kept in their own package so that a plain `swift test`
// in the repository root never builds the benchmark harness. See README.md for how to run.
import PackageDescription

// Every benchmark target is an executable under Benchmarks/<Name>/ driven by the
// package-benchmark plugin.
func benchmark(_ name: String, library: String = "SpoolLog", extra: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            .product(name: "Benchmark", package: "benchmark"),
            .product(name: library, package: "Spool"),
            "BenchmarkSupport",
        ] + extra,
        path: "Benchmarks/\(name)",
        plugins: [
            .plugin(name: "BenchmarkPlugin", package: "benchmark"),
        ]
    )
}

let package = Package(
    name: "SpoolBenchmarks",
    dependencies: [
        // Named, so that the dependency does not depend on the name of the clone's folder.
        .package(name: "Spool", path: ".."),
        // 1.38.1 on Swift 6.1+ takes its malloc statistics from an interposer instead of jemalloc.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // Deque for the Mutex + Deque baselines of the Matching cases (the main package's version).
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // Test data and the bytes-per-second metric (a library: the plugin runs executables only).
        .target(
            name: "BenchmarkSupport",
            dependencies: [.product(name: "Benchmark", package: "benchmark")],
            path: "Support"
        ),
        benchmark("Checksum"),
        benchmark("Compression"),
        benchmark("RecordBatchCodec"),
        benchmark("LogRead"),
        benchmark("Matching", library: "SpoolMatching", extra: [.product(name: "DequeModule", package: "swift-collections")]),
    ],
    swiftLanguageModes: [.v6]
)
