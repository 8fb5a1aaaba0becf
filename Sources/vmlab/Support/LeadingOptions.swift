import ArgumentParser

/// `--library DIR`, `--wait` and `--cluster URL` written before the command (`vmlab --library L vm
/// list`, `vmlab --cluster URL host list`), as users of git and virsh expect. swift-argument-parser takes options only after the subcommand that
/// declares them, so these are taken off the front of the arguments before parsing and reach
/// `LibraryOptions` through a task-local value. Given after the command too, the later one wins.
struct LeadingOptions: Sendable {
  var library: String?
  var wait = false
  var cluster: String?

  @TaskLocal static var current = LeadingOptions()

  /// Splits the leading library options off `arguments`; the rest is parsed as usual.
  static func split(_ arguments: [String]) throws -> (LeadingOptions, [String]) {
    var options = LeadingOptions()
    var index = arguments.startIndex
    while index < arguments.endIndex {
      let argument = arguments[index]
      if argument == "--wait" {
        options.wait = true
      } else if argument == "--library" {
        index += 1
        guard index < arguments.endIndex, !arguments[index].hasPrefix("-") || arguments[index] == "-" else {
          throw ValidationError("--library needs a folder, as in: vmlab --library ~/labs vm list")
        }
        options.library = arguments[index]
      } else if argument.hasPrefix("--library=") {
        options.library = String(argument.dropFirst("--library=".count))
        if options.library!.isEmpty {
          throw ValidationError("--library needs a folder, as in: vmlab --library=~/labs vm list")
        }
      } else if argument == "--cluster" {
        index += 1
        guard index < arguments.endIndex, !arguments[index].hasPrefix("-") else {
          throw ValidationError(
            "--cluster needs a database URL, as in: vmlab --cluster postgresql://lab@db/vmlab host list")
        }
        options.cluster = arguments[index]
      } else if argument.hasPrefix("--cluster=") {
        options.cluster = String(argument.dropFirst("--cluster=".count))
        if options.cluster!.isEmpty {
          throw ValidationError(
            "--cluster needs a database URL, as in: vmlab --cluster=postgresql://lab@db/vmlab host list")
        }
      } else {
        break
      }
      index += 1
    }
    return (options, Array(arguments[index...]))
  }
}
