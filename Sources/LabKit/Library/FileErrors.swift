import Foundation

/// A Foundation file error as a sentence that names the file ("…/disks: no such file or folder"),
/// not `NSCocoaErrorDomain Code=260`; other errors as they describe themselves.
public func describeFileError(_ error: Error) -> String {
  guard let error = error as? CocoaError else { return String(describing: error) }
  let path = (error.userInfo[NSFilePathErrorKey] as? String) ?? error.url?.path
  let reason: String
  switch error.code {
  case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or folder"
  case .fileWriteFileExists: reason = "it already exists"
  case .fileReadNoPermission, .fileWriteNoPermission: reason = "permission denied"
  case .fileWriteOutOfSpace: reason = "no space left on the device"
  case .fileReadCorruptFile: reason = "not a readable file"
  case .fileReadInvalidFileName, .fileWriteInvalidFileName: reason = "not a valid file name"
  default: reason = error.localizedDescription
  }
  return path.map { "\($0): \(reason)" } ?? reason
}

extension Library {
  /// The names in a folder, or an error that says which folder and why ("no such folder").
  func folderContents(_ path: String, what: String) throws -> [String] {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
      throw LabKitError(.notFound, "\(what) \(path) does not exist; check the path")
    }
    guard isFolder.boolValue else {
      throw LabKitError(.invalidArgument, "\(what) \(path) is a file, not a folder; give the folder that holds it")
    }
    do {
      return try FileManager.default.contentsOfDirectory(atPath: path)
    } catch {
      throw LabKitError(.failed, "cannot list \(what) \(path): \(describeFileError(error))")
    }
  }
}

/// File names in the order people number them: `disk2` before `disk10` (a plain string sort puts
/// `disk10` first and reorders the disks of a VM with ten or more).
func naturalOrder(_ left: String, _ right: String) -> Bool {
  var leftIndex = left.unicodeScalars.startIndex
  var rightIndex = right.unicodeScalars.startIndex
  let a = left.unicodeScalars
  let b = right.unicodeScalars
  func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }
  while leftIndex < a.endIndex && rightIndex < b.endIndex {
    if isDigit(a[leftIndex]) && isDigit(b[rightIndex]) {
      var leftEnd = leftIndex
      while leftEnd < a.endIndex && isDigit(a[leftEnd]) { leftEnd = a.index(after: leftEnd) }
      var rightEnd = rightIndex
      while rightEnd < b.endIndex && isDigit(b[rightEnd]) { rightEnd = b.index(after: rightEnd) }
      // Compare the numbers by value: without leading zeros, the longer is larger.
      let leftDigits = String(a[leftIndex..<leftEnd]).drop { $0 == "0" }
      let rightDigits = String(b[rightIndex..<rightEnd]).drop { $0 == "0" }
      if leftDigits.count != rightDigits.count { return leftDigits.count < rightDigits.count }
      if leftDigits != rightDigits { return leftDigits < rightDigits }
      leftIndex = leftEnd
      rightIndex = rightEnd
    } else {
      if a[leftIndex] != b[rightIndex] { return a[leftIndex].value < b[rightIndex].value }
      leftIndex = a.index(after: leftIndex)
      rightIndex = b.index(after: rightIndex)
    }
  }
  if (leftIndex == a.endIndex) != (rightIndex == b.endIndex) { return leftIndex == a.endIndex }
  return left < right
}
