import Foundation

/// Which file a path names at one moment, and in what state, as one stat(2) sees it: the device and
/// inode (the same file, not one put in its place), its length and its modification and change
/// times (not rewritten since). Two equal identities mean that what was read from the file still
/// holds, within the file system's timestamp resolution.
struct FileIdentity: Equatable {
  let device: UInt64
  let inode: UInt64
  let length: Int64
  let modifiedSeconds: Int
  let modifiedNanoseconds: Int
  let changedSeconds: Int
  let changedNanoseconds: Int

  /// The identity of the file at `path` now, or nil when it cannot be stat'ed (then the caller
  /// opens the file and reports that error).
  init?(path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
    length = Int64(info.st_size)
    modifiedSeconds = info.st_mtim.tv_sec
    modifiedNanoseconds = info.st_mtim.tv_nsec
    changedSeconds = info.st_ctim.tv_sec
    changedNanoseconds = info.st_ctim.tv_nsec
  }
}
