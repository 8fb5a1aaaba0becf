/// How strictly a disk or chain is opened.
public struct OpenOptions: Sendable {
  /// Refuse footers and headers whose checksum does not match (the default). Turning this off is the
  /// lenient mode for files whose fields were patched without updating the checksum.
  public var verifyChecksums: Bool
  /// Chains deeper than this are refused as absurd (a parent loop that unique ids did not catch, or a
  /// hostile file).
  public var maximumDepth: Int
  /// When set, parents are only followed to files inside this folder: a locator in an imported file
  /// cannot make vmlab open an unrelated file elsewhere (VHD-FORMAT.md §11 #22).
  public var parentSearchRoot: String?

  public init(verifyChecksums: Bool = true, maximumDepth: Int = 128, parentSearchRoot: String? = nil) {
    self.verifyChecksums = verifyChecksums
    self.maximumDepth = maximumDepth
    self.parentSearchRoot = parentSearchRoot
  }
}
