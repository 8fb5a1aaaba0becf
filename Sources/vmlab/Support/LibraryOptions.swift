import ArgumentParser
import Foundation
import LabKit

/// `--library DIR` and `--wait`, shared by every command that uses a library.
struct LibraryOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "The library folder (default: $VMLAB_LIBRARY, else $XDG_DATA_HOME/vmlab, else ~/.local/share/vmlab).",
      valueName: "dir"))
  var library: String?

  @Flag(help: "Wait for another vmlab process that is using the library instead of failing.")
  var wait = false

  var path: String { LibraryLocation.resolve(explicit: library ?? LeadingOptions.current.library) }

  /// `--wait` here or before the command.
  var waits: Bool { wait || LeadingOptions.current.wait }

  func open() throws -> Library {
    Hosts.libraryRoot.set(path)
    return try Library(at: path, hosts: Hosts.registry, wait: waits) { holder in
      FileHandle.standardError.write(Data("vmlab: \(holder); waiting for it to finish…\n".utf8))
    }
  }
}
