import Foundation
import VHD

// Writes the seed corpus: small disks made by the VHD library (as vmlab writes them) and the footers,
// headers, tables and locator data of the shared conformance files. Run by hand when the formats
// change: swift run --package-path Fuzz MakeSeeds [CORPUS [SHARED-TESTDATA]]. The output is committed.

let arguments = CommandLine.arguments
let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let fuzzFolder = here.deletingLastPathComponent().deletingLastPathComponent()
let corpus = arguments.count > 1 ? arguments[1] : fuzzFolder.appendingPathComponent("Corpus").path
let shared =
  arguments.count > 2
  ? arguments[2]
  : fuzzFolder.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/testdata/vhd")
    .path

let fileManager = FileManager.default
let scratch = NSTemporaryDirectory() + "vmlab-seeds-\(getpid())"
try fileManager.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? fileManager.removeItem(atPath: scratch) }

func seed(_ target: String, _ name: String, _ bytes: [UInt8]) throws {
  let folder = corpus + "/" + target
  try fileManager.createDirectory(atPath: folder, withIntermediateDirectories: true)
  try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name))
  print("\(target)/\(name): \(bytes.count) bytes")
}

func contents(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

func pattern(_ count: Int, _ start: UInt8) -> [UInt8] {
  (0..<count).map { UInt8(truncatingIfNeeded: Int(start) + $0 * 7) }
}

func sizePrefix(_ count: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: count >> (24 - $0 * 8)) } }

/// The structures of one file: footer, header, the table's bytes and each used locator's data.
struct Parts {
  var footer: [UInt8]
  var header: [UInt8]?
  var table: (count: Int, bytes: [UInt8])?
  var locators: [(ParentLocator.Platform, [UInt8])] = []

  init(_ bytes: [UInt8]) throws {
    footer = Array(bytes.suffix(512))
    let decoded = try Footer(decoding: footer, verifyChecksum: false)
    guard decoded.diskType != .fixed else { return }
    let headerStart = Int(decoded.dataOffset)
    let headerBytes = Array(bytes[headerStart..<(headerStart + 1024)])
    header = headerBytes
    let header = try DynamicHeader(decoding: headerBytes, verifyChecksum: false)
    let count = Int((decoded.currentSize + UInt64(header.blockSize) - 1) / UInt64(header.blockSize))
    let tableStart = Int(header.tableOffset)
    table = (count, Array(bytes[tableStart..<(tableStart + count * 4)]))
    for locator in header.parentLocators where locator.isUsed && locator.dataLength > 0 {
      let start = Int(locator.dataOffset)
      locators.append((locator.platform, Array(bytes[start..<(start + Int(locator.dataLength))])))
    }
  }
}

// Disks written by the library.
let fixedPath = scratch + "/fixed.vhd"
do {
  let chain = try { () throws -> DiskChain in
    try VirtualDisk.create(at: fixedPath, size: 4096, type: .fixed).close()
    return try DiskChain.open(fixedPath, writable: true)
  }()
  try chain.write(pattern(4096, 1), at: 0)
  chain.close()
}
let dynamicPath = scratch + "/dynamic.vhd"
do {
  try VirtualDisk.create(at: dynamicPath, size: 8192, blockSize: 512).close()
  let chain = try DiskChain.open(dynamicPath, writable: true)
  try chain.write(pattern(512, 2), at: 0)
  try chain.write(pattern(512, 3), at: 7680)
  chain.close()
}
let emptyPath = scratch + "/empty.vhd"
try VirtualDisk.create(at: emptyPath, size: 1 << 20).close()

let pairFolder = scratch + "/pair"
try fileManager.createDirectory(atPath: pairFolder, withIntermediateDirectories: true)
let parentPath = pairFolder + "/parent.vhd"
let childPath = pairFolder + "/child.vhd"
do {
  try VirtualDisk.create(at: parentPath, size: 8192, blockSize: 4096).close()
  let parent = try DiskChain.open(parentPath, writable: true)
  try parent.write(pattern(4096, 4), at: 0)
  parent.close()
  try VirtualDisk.createDifferencing(at: childPath, parent: parentPath).close()
  let child = try DiskChain.open(childPath, writable: true)
  // Sectors 1 and 3 of block 0: a sector-granular bitmap that mixes the layers.
  try child.write(pattern(512, 6), at: 512)
  try child.write(pattern(512, 7), at: 1536)
  child.close()
}
let fixedPairFolder = scratch + "/fixed-pair"
try fileManager.createDirectory(atPath: fixedPairFolder, withIntermediateDirectories: true)
let fixedParentPath = fixedPairFolder + "/parent.vhd"
let fixedChildPath = fixedPairFolder + "/child.vhd"
try fileManager.copyItem(atPath: fixedPath, toPath: fixedParentPath)
try VirtualDisk.createDifferencing(at: fixedChildPath, parent: fixedParentPath).close()

let fixed = try contents(fixedPath)
let dynamic = try contents(dynamicPath)
let empty = try contents(emptyPath)
let parent = try contents(parentPath)
let child = try contents(childPath)
let fixedChild = try contents(fixedChildPath)

try seed("open", "fixed.vhd", fixed)
try seed("open", "dynamic.vhd", dynamic)
try seed("open", "empty.vhd", empty)
try seed("open", "differencing.vhd", child)
try seed("chain", "over-dynamic", sizePrefix(child.count) + child + parent)
try seed("chain", "over-fixed", sizePrefix(fixedChild.count) + fixedChild + fixed)

let own: [(String, [UInt8])] = [
  ("fixed", fixed), ("dynamic", dynamic), ("empty", empty), ("parent", parent), ("differencing", child),
]
for (name, bytes) in own {
  let parts = try Parts(bytes)
  try seed("footer", name, parts.footer)
  if let header = parts.header { try seed("header", name, header) }
  if let table = parts.table {
    try seed("table", name, [UInt8(table.count >> 8), UInt8(table.count & 0xFF)] + table.bytes)
  }
  for (index, locator) in parts.locators.enumerated() {
    try seed("locator", "\(name)-\(index)-\(locator.0)", locator.1)
  }
}
// A block bitmap with sectors 1 and 3 present (the table target reads bitmaps after two bytes).
try seed("table", "bitmap", [0x03, 0x00, 0x50] + [UInt8](repeating: 0, count: 509))
try seed("locator", "macx", Array("file:///tmp/lab/parent.vhd".utf8))

// The shared conformance files: only their metadata, never the whole files.
if let names = try? fileManager.contentsOfDirectory(atPath: shared) {
  for name in names.sorted() where name.hasSuffix(".vhd") {
    let bytes = try contents(shared + "/" + name)
    let stem = String(name.dropLast(4))
    let parts = try Parts(bytes)
    try seed("footer", "shared-" + stem, parts.footer)
    if let header = parts.header { try seed("header", "shared-" + stem, header) }
    if let table = parts.table {
      try seed("table", "shared-" + stem, [UInt8(table.count >> 8), UInt8(table.count & 0xFF)] + table.bytes)
    }
    for (index, locator) in parts.locators.enumerated() {
      try seed("locator", "shared-\(stem)-\(index)-\(locator.0)", locator.1)
    }
    // The parent's unicode name field, UTF-16 big-endian.
    if let header = parts.header { try seed("locator", "shared-\(stem)-name", Array(header[64..<128])) }
    // The metadata at the start of a sparse file and its final footer: opens with its blocks past the end.
    if parts.header != nil {
      try seed("open", "shared-" + stem + "-metadata", Array(bytes.prefix(2048)) + parts.footer)
    }
  }
} else {
  print("no shared test data at \(shared); only vmlab's own disks were written")
}

let names = [
  "web01-disk1_20261126-214702-123_01.vhd", "base_with_underscores_20260101-000000-000_12.vhd",
  "db_20261231-235959-999_100.vhd", "web01-disk1_20261126-214702-123_1.vhd", "web01", "lab-1.x", "bad..name",
  "_20261126-214702-123_01.vhd", "Ünïcödé_20261126-214702-123_01.vhd",
]
for (index, name) in names.enumerated() { try seed("naming", "name-\(index)", Array(name.utf8)) }
