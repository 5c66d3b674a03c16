import GemelloCore
import GemelloSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the buffer does with a database it cannot trust: keep it for inspection, start afresh.
extension ReadingBuffer {
    /// Checks the database at `path` (if any) with SQLite's `quick_check`; when it is not a
    /// database or is damaged, renames it and its WAL/SHM files to `<path>.corrupt-<unix ms>…`
    /// and returns the new name. Unreadable for other reasons (permissions) is not corruption:
    /// that error surfaces when the buffer opens.
    static func moveAsideIfCorrupt(_ path: String) throws(AgentError) -> String? {
        guard access(path, F_OK) == 0 else { return nil }
        let corrupt: Bool
        do {
            let db = try SQLiteConnection(path: path)
            let result = try db.reading { db -> String in
                let check = try db.statement("PRAGMA quick_check(1)")
                return try check.step() ? check.text(0) : "no result"
            }
            corrupt = result != "ok"
        } catch let error as SQLiteError where error.code == .corrupt {
            corrupt = true
        } catch {
            return nil
        }
        guard corrupt else { return nil }
        let aside = "\(path).corrupt-\(SystemWallClock().nowMilliseconds())"
        for suffix in ["", "-wal", "-shm"] where access(path + suffix, F_OK) == 0 {
            guard rename(path + suffix, aside + suffix) == 0 else {
                throw AgentError(.buffer, "the buffer database at \(path) is corrupt and could not be moved aside to \(aside): "
                                 + "\(String(cString: strerror(errno))). Fix: move it away by hand (keep it for inspection) and restart")
            }
        }
        return aside
    }
}
