// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "fdfsfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FastDFSProtocol", targets: ["FastDFSProtocol"]),
        .library(name: "FastDFS", targets: ["FastDFS"]),
        .library(name: "FastDFSDevServer", targets: ["FastDFSDevServer"]),
        .executable(name: "fdfs", targets: ["fdfs"]),
        .executable(name: "fdfsfs", targets: ["fdfsfs"]),
        .executable(name: "fdfs-devserver", targets: ["fdfs-devserver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // Pure wire codec shared by the client and the dev server.
        .target(
            name: "FastDFSProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Async FastDFS client: connections, pool, trackers, API.
        .target(
            name: "FastDFS",
            dependencies: [
                "FastDFSProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // FastDFS-compatible tracker + storage in one process (tests and local trials).
        .target(
            name: "FastDFSDevServer",
            dependencies: [
                "FastDFSProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // libfuse3 system library with a thin shim header.
        .systemLibrary(
            name: "CFuse3",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        // Filesystem-facing value types and the FuseFilesystem protocol; no C import.
        .target(
            name: "FuseTypes",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: swiftSettings
        ),
        // libfuse low-level glue; knows nothing of FastDFS.
        .target(
            name: "FuseKit",
            dependencies: [
                "CFuse3", "FuseTypes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // The filesystem: naming layer, inode table, caches, read/write paths; knows nothing of libfuse.
        .target(
            name: "FDFSFileSystem",
            dependencies: [
                "FuseTypes", "FastDFS", "FastDFSProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL naming engine: one named tree shared by several mounts (postgres-nio).
        .target(
            name: "FDFSNamingPostgres",
            dependencies: [
                "FDFSFileSystem", "FuseTypes",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What operators read: the log line format, the metrics registry and its endpoint, `fdfsfs stats`.
        .target(
            name: "FDFSObservability",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fdfs",
            dependencies: [
                "FastDFS", "FastDFSProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fdfsfs",
            dependencies: [
                "CFuse3", "FuseKit", "FuseTypes", "FDFSFileSystem", "FDFSNamingPostgres", "FDFSObservability", "FastDFS",
                "FastDFSProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fdfs-devserver",
            dependencies: [
                "FastDFSDevServer", "FastDFSProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support (not shipped): the loader of the captured protocol vectors.
        .target(name: "ProtocolVectorSupport", path: "Tests/ProtocolVectorSupport", swiftSettings: swiftSettings),
        // Test support (not shipped): a private PostgreSQL per test process (initdb + pg_ctl).
        .target(name: "PostgresTestSupport", path: "Tests/PostgresTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "FastDFSProtocolTests",
            dependencies: ["FastDFSProtocol", "ProtocolVectorSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FastDFSTests",
            dependencies: [
                "FastDFS", "FastDFSProtocol", "ProtocolVectorSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FastDFSDevServerTests",
            dependencies: [
                "FastDFSDevServer", "FastDFS", "FastDFSProtocol", "ProtocolVectorSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FuseKitTests",
            dependencies: [
                "FuseKit", "FuseTypes", "CFuse3",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresTestSupportTests",
            dependencies: ["PostgresTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FDFSObservabilityTests",
            dependencies: [
                "FDFSObservability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FDFSFileSystemTests",
            dependencies: [
                "FDFSFileSystem", "FDFSNamingPostgres", "PostgresTestSupport", "FuseTypes",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
