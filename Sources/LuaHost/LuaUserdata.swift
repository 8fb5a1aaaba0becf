import CLua
import CLuaShim

/// A userdata (or light userdata) seen from Swift. Objects of a LuaClass are userdata; read their
/// payload with `LuaClass.payload(of:)` or `payload(as:)`.
public final class LuaUserdata: LuaReference {
  /// The Swift payload if this is an object of `luaClass`, nil otherwise.
  public func payload<Payload>(as luaClass: LuaClass<Payload>) -> Payload? {
    guard state.isOpen else { return nil }
    return withPushed { L, index in luaClass.payload(at: index, on: L) }
  }
}
