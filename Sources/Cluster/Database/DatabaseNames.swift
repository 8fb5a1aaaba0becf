import LabKit

/// A name read from the database is checked as a name a user typed would be: the database is shared
/// by many machines, and a name becomes a folder or file name in a library.
func validatedName(_ name: String, as what: String) throws -> String {
  do {
    try NameRules.validate(name, as: what)
  } catch let error as LabKitError {
    throw ClusterError(.database, "the cluster database holds a bad \(what) name: \(error.message)")
  }
  return name
}
