// swift-tools-version: 6.0
// vmlab: virtual machines, VHD disks and VM-level checkpoints, scripted in Lua.
// Layers (see README.md): vmlab → LuaHost → LabKit → VHD, QEMUHost → LabKit + DiskServing → NBD,
// Cluster → LabKit + PostgresNIO; CLua wraps Debian's liblua5.4.
import PackageDescription

let package = Package(
  name: "vmlab",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "vmlab", targets: ["vmlab"]),
    .library(name: "VHD", targets: ["VHD"]),
    .library(name: "LabKit", targets: ["LabKit"]),
    .library(name: "NBD", targets: ["NBD"]),
    .library(name: "QEMUHost", targets: ["QEMUHost"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
    // Already in the graph through PostgresNIO (SCRAM); the cluster checks template files with its SHA-256.
    .package(url: "https://github.com/apple/swift-crypto", "3.9.0"..<"6.0.0"),
  ],
  targets: [
    // The disk format: fixed, dynamic and differencing VHDs, chains, merge.
    .target(
      name: "VHD",
      dependencies: [.product(name: "SystemPackage", package: "swift-system")]
    ),
    // An NBD server for any block device; knows nothing of VHD or VMs.
    .target(name: "NBD"),
    // A VHD chain as an NBD block device, and a served chain's switch to a new leaf.
    .target(name: "DiskServing", dependencies: ["NBD", "VHD"]),
    // The engine: library, catalog, VMs, checkpoints, labs, jobs, the simulated host.
    .target(
      name: "LabKit",
      dependencies: ["VHD", .product(name: "GRDB", package: "GRDB.swift")]
    ),
    // Real VMs: qemu-system-x86_64 run by a supervisor per VM, its disks served over NBD from the
    // VHD chains, driven through QMP and the qemu guest agent; guest images from Debian packages.
    .target(name: "QEMUHost", dependencies: ["LabKit", "DiskServing", "NBD", "VHD"]),
    // Many hosts: the cluster client and `vmlab agent`, PostgreSQL (through PostgresNIO) holding
    // hosts, placement and jobs; each agent runs its steps on its own library through LabKit.
    .target(
      name: "Cluster",
      dependencies: [
        "LabKit", "VHD", .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
      ]
    ),
    // Debian's liblua5.4 (pkg-config lua5.4).
    .systemLibrary(
      name: "CLua",
      pkgConfig: "lua5.4",
      providers: [.apt(["liblua5.4-dev"])]
    ),
    // The C side of every Swift function Lua calls: it raises Lua errors after the Swift frame returns.
    .target(name: "CLuaShim", dependencies: ["CLua"]),
    // The Lua state and the generic bridge: values, Swift functions, userdata classes, lists, sandbox.
    // The module `vmlab` (Engine/) translates between Lua and LabKit/VHD; it owns nothing else.
    .target(name: "LuaHost", dependencies: ["CLua", "CLuaShim", "LabKit", "VHD"]),
    // Debian's libedit (pkg-config libedit): line editing and history for `vmlab repl`.
    .systemLibrary(
      name: "CEditLine",
      pkgConfig: "libedit",
      providers: [.apt(["libedit-dev"])]
    ),
    .executableTarget(
      name: "vmlab",
      dependencies: [
        "VHD", "NBD", "DiskServing", "LabKit", "QEMUHost", "LuaHost", "CEditLine", "Cluster",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // What the test targets share: temporary folders, seeded random bytes.
    .target(name: "TestSupport", dependencies: ["Cluster"], path: "Tests/TestSupport"),
    .testTarget(name: "VHDTests", dependencies: ["VHD", "TestSupport"]),
    .testTarget(name: "NBDTests", dependencies: ["NBD", "TestSupport"]),
    .testTarget(name: "DiskServingTests", dependencies: ["DiskServing", "NBD", "VHD", "TestSupport"]),
    .testTarget(
      name: "LabKitTests",
      dependencies: ["LabKit", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
    .testTarget(name: "QEMUHostTests", dependencies: ["QEMUHost", "LabKit", "VHD", "TestSupport"]),
    .testTarget(name: "LuaHostTests", dependencies: ["LuaHost", "LabKit", "VHD", "TestSupport"]),
    .testTarget(name: "ClusterTests", dependencies: ["Cluster", "LabKit", "TestSupport"]),
    // End to end: runs the built vmlab binary.
    .testTarget(name: "vmlabTests", dependencies: ["VHD", "LabKit", "QEMUHost", "Cluster", "vmlab", "TestSupport"]),
  ]
)
