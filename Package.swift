// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Spool",
    products: [
        .library(name: "SpoolLog", targets: ["SpoolLog"]),
        .library(name: "SpoolMatching", targets: ["SpoolMatching"]),
        .library(name: "SpoolQueue", targets: ["SpoolQueue"]),
        .library(name: "Spool", targets: ["Spool"]),
        .executable(name: "spool", targets: ["spool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // The server targets only (`spool serve`); no library target depends on these.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The web console (`spool serve --ui`) only; no library target but SpoolConsole depends on it.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // The system liblz4 (Debian: liblz4-dev). Never visible in public API.
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // CRC32C: the SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 otherwise.
        .target(name: "CCRC32C"),
        // The libc functions Swift's Glibc module does not expose (flock, malloc_usable_size,
        // pthread_setname_np). Never visible in public API.
        .target(name: "CSpoolShims"),
        // The bottom of every layer, not a product: one lock, one async semaphore, one deadline
        // heap with its sleeper, threads and clocks.
        .target(
            name: "SpoolPrimitives",
            dependencies: [
                "CSpoolShims",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "SpoolLog",
            dependencies: [
                "CLZ4",
                "CCRC32C",
                "SpoolPrimitives",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Test doubles of SpoolLog's system-call seam (fault injection, simulated power loss) and
        // self-describing records. Used by the tests, the fuzzers and the crash lab; never linked
        // into a library product.
        .target(
            name: "SpoolLogTesting",
            dependencies: ["SpoolLog", "SpoolPrimitives"]
        ),
        // The in-memory matching core: task-queue partitions, pollers, sync match. No files, no Foundation.
        .target(
            name: "SpoolMatching",
            dependencies: [
                "SpoolPrimitives",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // Durable task queues: SpoolMatching's dispatcher in front, a SpoolLog backlog behind.
        .target(
            name: "SpoolQueue",
            dependencies: [
                "SpoolPrimitives",
                "SpoolLog",
                "SpoolMatching",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The engine users embed: workflow executions, histories, workflow and activity tasks.
        .target(
            name: "Spool",
            dependencies: [
                "SpoolPrimitives",
                "SpoolLog",
                "SpoolMatching",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Temporal's WorkflowService messages and service stubs: Swift generated from the .proto
        // files in Protos by Tools/generate-protos and committed, so a build never runs protoc.
        .target(
            name: "SpoolServerProtos",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["Protos"]
        ),
        // `spool serve`: Temporal's WorkflowService over gRPC, translated to and from the engine's
        // public API. Holds no engine rules.
        .target(
            name: "SpoolServer",
            dependencies: [
                "Spool",
                "SpoolServerProtos",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ]
        ),
        // `spool serve --ui`: the web console, server-rendered HTML over the engine's public API
        // (not over gRPC), with its stylesheet and script as resources. Holds no engine rules.
        .target(
            name: "SpoolConsole",
            dependencies: [
                "Spool",
                "SpoolToolSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Assets")]
        ),
        // The system SQLite (Debian: libsqlite3-dev), used only as the baseline of `spool bench queue` (in the lab).
        .systemLibrary(
            name: "CSQLite",
            path: "Tools/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // What both executables print and parse (terminal output, JSON, --data and --durability,
        // the data directory's messages); not a product.
        .target(
            name: "SpoolToolSupport",
            dependencies: [
                "SpoolLog",
                "SpoolMatching",
                "SpoolQueue",
                "Spool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/SpoolToolSupport"
        ),
        // The operator's command. `spool bench` and `spool torture` run the lab beside it.
        .executableTarget(
            name: "spool",
            dependencies: [
                "SpoolLog",
                "SpoolMatching",
                "SpoolQueue",
                "Spool",
                "SpoolServer",
                "SpoolServerProtos",
                "SpoolConsole",
                "SpoolToolSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // The commands that take --address call a running server (Tools/spool/Remote).
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tools/spool"
        ),
        // The benchmark and crash lab (Docs/lab.md): a second executable, so that `spool` links
        // neither SQLite, nor the test simulators, nor the benchmark harness. Not a product:
        // `swift build` builds it beside `spool`, and `swift build --product spool-lab` alone.
        .executableTarget(
            name: "spool-lab",
            dependencies: [
                "SpoolPrimitives",
                "SpoolLog",
                "SpoolLogTesting",
                "SpoolMatching",
                "SpoolQueue",
                "Spool",
                "SpoolToolSupport",
                "CSQLite",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Tools/spool-lab"
        ),
        // The CPU floor of one gRPC call on NIO + NIOHTTP2 (Docs/measurements/2026-12-06-serve-rpc-floor.md):
        // a fixed unary answer on the event loop. A bench tool only: not a product, nothing depends on it.
        .executableTarget(
            name: "spool-rpc-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Tools/rpc-floor"
        ),
        // Helpers shared by the test targets (temporary directories, seeded input mutation); not a product.
        .target(
            name: "SpoolTestSupport",
            dependencies: ["SpoolLogTesting"],
            path: "Tests/SpoolTestSupport"
        ),
        .testTarget(
            name: "SpoolLogTests",
            dependencies: ["SpoolLog", "SpoolLogTesting", "SpoolPrimitives", "SpoolTestSupport"]
        ),
        .testTarget(
            name: "SpoolMatchingTests",
            dependencies: ["SpoolMatching", "SpoolPrimitives"]
        ),
        .testTarget(
            name: "SpoolQueueTests",
            dependencies: ["SpoolQueue", "SpoolLogTesting", "SpoolPrimitives", "SpoolTestSupport"]
        ),
        .testTarget(
            name: "SpoolTests",
            dependencies: ["Spool", "SpoolLogTesting", "SpoolPrimitives", "SpoolTestSupport"]
        ),
        .testTarget(
            name: "SpoolServerTests",
            dependencies: [
                "SpoolServer",
                "SpoolServerProtos",
                "Spool",
                "SpoolTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ]
        ),
        // The console's pure parts: escaping, formatting, page rendering from plain values.
        .testTarget(
            name: "SpoolConsoleTests",
            dependencies: ["SpoolConsole", "Spool", "SpoolTestSupport"]
        ),
        // Runs the `spool` executable (built by `swift test` beside the test bundle, with `spool-lab`
        // that its `bench` and `torture` run) with good and bad input.
        .testTarget(
            name: "SpoolToolTests",
            dependencies: ["SpoolLog", "SpoolLogTesting", "SpoolMatching", "SpoolQueue", "Spool", "SpoolToolSupport", "SpoolTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
