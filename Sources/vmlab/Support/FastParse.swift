import ArgumentParser

/// The parse of a command line that is not about shell completion, without swift-argument-parser's
/// completion-script check.
///
/// `parseAsRoot` first parses the whole line twice more, as the `--generate-completion-script`
/// option alone, whether or not it is there: about half of the parser's work (some 8 M instructions
/// of a `vmlab lab restore`, which as a whole costs about 90 M). The check is skipped only for a
/// root that has a super-command, so `FastParseRoot` (the same subcommands as `VMLab`) declares
/// one. That name shows only in help, and help is never produced here: anything but a command of
/// vmlab's own that parsed cleanly (help, `--version`, errors, completion requests) returns nil,
/// and `VMLab.parseAsRoot` parses the line again to answer exactly as it always did.
enum FastParse {
  static func command(_ arguments: [String]) -> ParsableCommand? {
    // Completion requests (`--generate-completion-script`, the `---completion` protocol) go to the
    // full parse, whatever else the line holds (a script's arguments after `run` too).
    guard !arguments.contains(where: { $0.hasPrefix("--generate-completion-script") || $0.hasPrefix("---") }) else {
      return nil
    }
    guard let command = try? FastParseRoot.parseAsRoot(arguments) else { return nil }
    // The help command the parser adds, and the root itself, are not vmlab's commands.
    guard UsageErrors.path(to: type(of: command)) != nil, !(command is FastParseRoot) else { return nil }
    return command
  }
}

/// `VMLab` for `FastParse`: its subcommands, with the super-command that turns the completion
/// check off.
struct FastParseRoot: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: VMLab.configuration.commandName, _superCommandName: "vmlab",
    subcommands: VMLab.configuration.subcommands)
}
