/// The one rule for changing several VMs at once (DESIGN.md): it is deliberate, never a surprise.
/// A restore or merge that would touch more than one VM needs the caller's `all` (or is a dry run);
/// the CLI (`--all`) and Lua (`{all=true}`) ask it the same way and differ only in how they say it.
public enum BulkChange {
  /// Throws unless the change touches at most one VM, or `all` or `whatIf` was given. `confirm`
  /// says how the caller confirms (`pass --all`, `pass {all=true}`).
  public static func check(vms: [String], verb: String, all: Bool, whatIf: Bool, confirm: String) throws {
    var seen = Set<String>()
    let distinct = vms.filter { seen.insert(NameRules.key($0)).inserted }
    guard distinct.count > 1, !all, !whatIf else { return }
    throw LabKitError(
      .unconfirmedBulkChange,
      "\(verb): this would change \(distinct.count) VMs (\(distinct.joined(separator: ", "))); changing several VMs at once must be deliberate: \(confirm)"
    )
  }
}
