/// A VM a cluster job created: which host's library holds it, and what its step said.
public struct PlacedVM: Sendable, Codable, Equatable {
  public var vm: String
  public var host: String
  public var message: String

  public init(vm: String, host: String, message: String) {
    self.vm = vm
    self.host = host
    self.message = message
  }
}
