/// A host whose guests are simulated: no guest code runs, so what a guest would write to its disks
/// is written for it at byte offsets (`SimulatedGuest`). A real host offers no such thing; its
/// guests write for themselves.
public protocol SimulatingHost: HostDriver {}
