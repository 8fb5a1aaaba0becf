import ArgumentParser
import Foundation
import NBD
import VHD

#if canImport(Glibc)
  import Glibc
#endif

struct DiskServe: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve a disk, through its whole chain, over NBD on a UNIX socket until Ctrl-C or SIGTERM.",
    discussion: """
      Reads come through the chain; writes go to the leaf, which is flushed (fsync) on every NBD flush
      and FUA write and once more before vmlab exits 0. Clients: qemu, qemu-img, qemu-io, nbdinfo,
      nbdcopy, nbdsh, nbd-client.

      Example: vmlab disk serve web01.vhd --socket web01.sock &
               qemu-img convert -O qcow2 'nbd+unix:///?socket=web01.sock' web01.qcow2
      """
  )

  @Argument(help: "The VHD file to serve (the leaf of its chain).")
  var path: String

  @Option(help: "The UNIX socket to listen on; a stale socket file there is replaced.")
  var socket: String

  @Flag(help: "Refuse writes (clients see a read-only export, writes fail with EPERM).")
  var readOnly = false

  @Option(help: "The export name clients may ask for (the default export, '', always works).")
  var name: String?

  @OptionGroup var readOptions: ReadOptions

  func run() throws {
    // Signals are taken by sigwait below; every thread started from here on inherits the mask.
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
    signal(SIGPIPE, SIG_IGN)

    let device = try ChainBlockDevice(path: path, readOnly: readOnly, options: readOptions.openOptions)
    defer { device.close() }
    let exportName = name ?? URL(fileURLWithPath: device.leafPath).deletingPathExtension().lastPathComponent
    let export = Export(
      name: exportName, details: "vmlab VHD chain of \(device.depth) disk(s): \(device.leafPath)", device: device)
    let server: NBDServer
    do {
      server = try NBDServer(export: export, socketPath: socket)
    } catch let error as NBDServerError {
      throw ValidationError(error.description)
    }
    server.start()
    let access = readOnly ? "read-only" : "read-write"
    print(
      "serving \(device.leafPath) (\(ByteCount.format(device.size)), chain of \(device.depth), \(access)) as '\(exportName)' on \(socket)"
    )
    fflush(nil)

    var received: Int32 = 0
    sigwait(&stopSignals, &received)
    server.stop()
    try export.flush()
    print("stopped on signal \(received); the leaf is flushed")
    fflush(nil)
  }
}
