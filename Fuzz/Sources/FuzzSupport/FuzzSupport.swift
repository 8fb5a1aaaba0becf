import CFuzzerDriver
import Foundation
import Glibc
import VHD

/// libFuzzer's `LLVMFuzzerTestOneInput`: the input's bytes (non-nil in practice) and their count.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer on `target` with this process's arguments (`-max_total_time=60 CORPUS…`) and exits
/// with its status. Each fuzzer's `@main` calls this.
public func runFuzzer(_ target: FuzzTarget) -> Never {
  var argc = CommandLine.argc
  var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
  exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}

/// The input as an array (empty when libFuzzer passes no bytes).
public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
  guard let data, size > 0 else { return [] }
  return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A scratch folder for one fuzzer process: the input is written to files here on every run.
public enum Scratch {
  /// `vmlab-fuzz-<pid>` in /dev/shm when there is one (no disk writes), else in the temporary
  /// directory; created on first use and removed at exit.
  public static let folder: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm/" : NSTemporaryDirectory()
    let path = base + "vmlab-fuzz-\(getpid())"
    try? FileManager.default.removeItem(atPath: path)
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: Scratch.folder) }
    return path
  }()

  /// Replaces `name` in the scratch folder with `bytes` and returns its path. Plain open/write/close:
  /// Foundation's atomic file writing costs more than the run itself.
  public static func write(_ bytes: UnsafeRawBufferPointer, to name: String) -> String {
    let path = folder + "/" + name
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(descriptor >= 0, "cannot write \(path)")
    var done = 0
    while done < bytes.count {
      let written = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
      precondition(written > 0, "cannot write \(path)")
      done += written
    }
    close(descriptor)
    return path
  }
}

/// What every target does with a disk it managed to open as a chain: read some of it (the first and last
/// sectors, a run across a block boundary, a spread of blocks) and account its space.
public func exercise(_ chain: DiskChain) {
  let size = chain.size
  var offsets: [UInt64] = [0, size - 512, size / 2 / 512 * 512]
  let blockSize = UInt64(chain.blockSize)
  if size > blockSize { offsets.append(blockSize - 512) }
  for offset in offsets {
    _ = try? chain.read(at: offset, count: Int(min(1024, size - offset)))
  }
  // At most 64 blocks, spread over the disk, 4 KiB of each.
  let blocks = chain.blockCount
  for index in stride(from: 0, to: blocks, by: max(1, blocks / 64)) {
    let start = UInt64(index) * blockSize
    _ = try? chain.read(at: start, count: Int(min(4096, size - start)))
  }
  _ = try? DiskInfo(chain: chain)
}

/// Any error a parser throws must be a `VHDError`: anything else is a finding.
public func expectVHDError<T>(_ body: () throws -> T) -> T? {
  do {
    return try body()
  } catch is VHDError {
    return nil
  } catch {
    fatalError("not a VHDError: \(error)")
  }
}
