import ArgumentParser
import DiskServing
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
      Reads come through the chain; writes go to the leaf, which is flushed (fsync) on every NBD \
      flush and FUA write and once more before vmlab exits 0. Trims free the leaf's own space. \
      Clients include qemu, qemu-img, qemu-io, nbdinfo, nbdcopy and nbdsh.

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

    let served = try ServedChain(
      path: path, socketPath: socket, readOnly: readOnly, name: name, options: readOptions.openOptions)
    served.start()
    let access = readOnly ? "read-only" : "read-write"
    print(
      "serving \(served.leafPath) (\(ByteCount.format(served.size)), chain of \(served.depth), \(access)) as '\(served.export.name)' on \(socket)"
    )
    fflush(nil)

    var received: Int32 = 0
    sigwait(&stopSignals, &received)
    try served.stop()
    print("stopped on signal \(received); the leaf is flushed")
    fflush(nil)
  }
}
