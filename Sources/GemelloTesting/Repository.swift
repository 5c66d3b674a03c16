import Foundation

/// Paths of the repository and of the shared datasets beside it (`../shared/datasets`).
public enum Repository {
    /// The package root, found from this source file's location.
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // GemelloTesting, Sources, <root>
        return url
    }()

    /// `../shared/datasets/<name>` (never copied into the repository).
    public static func dataset(_ name: String) -> URL {
        root.deletingLastPathComponent().appendingPathComponent("shared/datasets/\(name)")
    }

    /// A fresh temporary folder for one test.
    public static func temporaryFolder(_ label: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gemello-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
