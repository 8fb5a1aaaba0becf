import Foundation
import LabKit

extension ClusterDatabase {
  /// Drops the placement of `vm` on `host` after its host removed it from its library.
  public func forgetPlacement(vm: String, host: String) async throws {
    try await rows("DELETE FROM vm_placement WHERE vm_key = \(NameRules.key(vm)) AND host = \(host)")
  }
}
