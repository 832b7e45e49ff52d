// swift-tools-version: 6.1
// Micro-benchmarks for SpoolLog, kept in their own package so that a plain `swift test`
// in the repository root never builds the benchmark harness. See README.md for how to run.
import PackageDescription

// Every benchmark target is an executable under Benchmarks/<Name>/ driven by the
// package-benchmark plugin.
func benchmark(_ name: String) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            .product(name: "Benchmark", package: "benchmark"),
            .product(name: "SpoolLog", package: "Spool"),
            "BenchmarkSupport",
        ],
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
    ],
    swiftLanguageModes: [.v6]
)
