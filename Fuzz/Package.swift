// swift-tools-version: 6.0
// libFuzzer targets for vmlab's parsers. A separate package, so that the main package's build, tests
// and CI never see it; it uses the main package by path. Build and run with ../Scripts/fuzz, which
// passes -sanitize=fuzzer,address (see README.md, "Fuzzing").
import PackageDescription

let vhd = Target.Dependency.product(name: "VHD", package: "vmlab")
let labKit = Target.Dependency.product(name: "LabKit", package: "vmlab")

// One executable per fuzz target: its LLVMFuzzerTestOneInput, and a @main that hands it to libFuzzer.
let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
  ("FuzzFooter", [vhd]),
  ("FuzzDynamicHeader", [vhd]),
  ("FuzzTable", [vhd]),
  ("FuzzLocator", [vhd]),
  ("FuzzOpen", [vhd]),
  ("FuzzChain", [vhd]),
  ("FuzzNaming", [labKit]),
]

let package = Package(
  name: "vmlab-fuzz",
  platforms: [.macOS(.v13)],
  dependencies: [.package(path: "vmlab")],
  targets: [
    // Declares libFuzzer's LLVMFuzzerRunDriver.
    .target(name: "CFuzzerDriver"),
    .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", vhd]),
    // Writes the seed corpus (small VHDs made by the VHD library) into Corpus/; built without sanitizers.
    .executableTarget(name: "MakeSeeds", dependencies: [vhd]),
  ] + fuzzers.map { .executableTarget(name: $0.name, dependencies: ["FuzzSupport"] + $0.dependencies) }
)
