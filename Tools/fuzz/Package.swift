// swift-tools-version: 6.1
// libFuzzer targets for the decoders of data from disk (SpoolLog, SpoolQueue, Spool), of task tokens and of visibility queries. Not part of `swift test`: build and run them with
// `Tools/fuzz/run.sh` (see Docs/reliability.md), which passes -sanitize=fuzzer and -enable-testing.
import PackageDescription

let package = Package(
    name: "SpoolFuzz",
    dependencies: [
        .package(name: "Spool", path: "../.."),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzRecordBatch", dependencies: ["FuzzDriver", .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzDriver", .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzOpenDirectory", dependencies: ["FuzzDriver", .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzOffsetIndex", dependencies: ["FuzzDriver", .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzQueueRecord", dependencies: ["FuzzDriver", .product(name: "SpoolQueue", package: "Spool"),
                                                                  .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzEngineRecord", dependencies: ["FuzzDriver", .product(name: "Spool", package: "Spool"),
                                                                   .product(name: "SpoolLog", package: "Spool")]),
        .executableTarget(name: "FuzzVisibilityQuery", dependencies: ["FuzzDriver", .product(name: "Spool", package: "Spool"),
                                                                      .product(name: "SpoolLog", package: "Spool")]),
    ],
    swiftLanguageModes: [.v6]
)
