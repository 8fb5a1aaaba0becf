import ArgumentParser
import VHD

/// `vmlab disk …`: VHD files on their own, with or without a library.
struct DiskCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "disk",
    abstract: "Create, inspect, check, merge, import and export VHD disks.",
    subcommands: [
      DiskCreate.self, DiskInfoCommand.self, DiskCheckCommand.self, DiskImport.self, DiskExport.self,
      DiskMerge.self, DiskWrite.self, DiskServe.self,
    ]
  )
}

/// Options shared by commands that read existing disks.
struct ReadOptions: ParsableArguments {
  @Flag(help: "Read disks whose footer or header checksum does not match (for files patched by hand).")
  var ignoreChecksums = false

  var openOptions: OpenOptions { OpenOptions(verifyChecksums: !ignoreChecksums) }
}
