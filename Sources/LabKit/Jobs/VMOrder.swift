import Foundation

/// Operations on one VM run one at a time, in the order they were asked (DESIGN.md rule 6),
/// whether they run at once on the caller's thread or later as a queued job: each takes a place in
/// the VM's line when it is asked for — a job when it is submitted — and runs when its place comes
/// first. Different VMs do not wait for each other. A thread that holds a VM's turn may ask again
/// (an operation that calls another), and runs at once.
final class VMOrder: @unchecked Sendable {
  /// A place in one VM's line.
  final class Place: @unchecked Sendable {
    let key: String
    fileprivate init(key: String) { self.key = key }
  }

  private let condition = NSCondition()
  private var lines: [String: [Place]] = [:]
  /// Who holds each VM's turn now, and how many times over.
  private var holders: [String: (thread: ObjectIdentifier, depth: Int)] = [:]

  /// Takes a place at the end of the VM's line, to be used later by `run(_:_:)`.
  func reserve(_ key: String) -> Place {
    let place = Place(key: key)
    condition.withLock { lines[key, default: []].append(place) }
    return place
  }

  /// Runs `body` when `place` comes first in its line; the next place goes after.
  func run<T>(_ place: Place, _ body: () throws -> T) rethrows -> T {
    let me = ObjectIdentifier(Thread.current)
    condition.lock()
    while lines[place.key]?.first !== place { condition.wait() }
    holders[place.key] = (me, 1)
    condition.unlock()
    defer {
      condition.lock()
      lines[place.key]?.removeFirst()
      if lines[place.key]?.isEmpty ?? false { lines[place.key] = nil }
      holders[place.key] = nil
      condition.broadcast()
      condition.unlock()
    }
    return try body()
  }

  /// Runs `body` in the VM's turn: at once when this thread holds it already, else after everything
  /// asked for before it.
  func withTurn<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
    let me = ObjectIdentifier(Thread.current)
    condition.lock()
    if let holder = holders[key], holder.thread == me {
      holders[key] = (me, holder.depth + 1)
      condition.unlock()
      defer { condition.withLock { holders[key]?.depth -= 1 } }
      return try body()
    }
    let place = Place(key: key)
    lines[key, default: []].append(place)
    condition.unlock()
    return try run(place, body)
  }
}
