#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Foundation-free file helpers shared by the agent and the aggregator (reading a config,
/// resolving paths relative to it).
public enum FileText {
    public struct ReadError: Error { public let reason: String }

    /// The whole file as UTF-8 text.
    public static func read(_ path: String) throws(ReadError) -> String {
        guard let file = fopen(path, "rb") else { throw ReadError(reason: String(cString: strerror(errno))) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count { break }
        }
        if ferror(file) != 0 { throw ReadError(reason: String(cString: strerror(errno))) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Makes `path` and the folders above it that are missing (mode 0750), as `mkdir -p` does;
    /// a folder that exists already is fine.
    public static func makeFolder(_ path: String) throws(ReadError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o750) != 0 && errno != EEXIST {
                throw ReadError(reason: "cannot make the folder \(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ReadError(reason: "\(path) is not a folder")
        }
    }

    /// `path` unchanged if absolute, else relative to the folder holding `file`.
    public static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// The folder holding `path` ("." for a bare file name).
    public static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
