// swift-tools-version: 6.0
// vmlab: virtual machines, VHD disks and VM-level checkpoints, scripted in Lua.
// Layers (see README.md): vmlab → LuaHost → LabKit → VHD; CLua wraps Debian's liblua5.4.
import PackageDescription

let package = Package(
  name: "vmlab",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "vmlab", targets: ["vmlab"]),
    .library(name: "VHD", targets: ["VHD"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
  ],
  targets: [
    // The disk format: fixed, dynamic and differencing VHDs, chains, merge.
    .target(
      name: "VHD",
      dependencies: [.product(name: "SystemPackage", package: "swift-system")]
    ),
    // Debian's liblua5.4 (pkg-config lua5.4).
    .systemLibrary(
      name: "CLua",
      pkgConfig: "lua5.4",
      providers: [.apt(["liblua5.4-dev"])]
    ),
    // The C side of every Swift function Lua calls: it raises Lua errors after the Swift frame returns.
    .target(name: "CLuaShim", dependencies: ["CLua"]),
    .executableTarget(
      name: "vmlab",
      dependencies: [
        "VHD",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .testTarget(name: "VHDTests", dependencies: ["VHD"]),
    // End to end: runs the built vmlab binary.
    .testTarget(name: "vmlabTests", dependencies: ["VHD", "vmlab"]),
  ]
)
