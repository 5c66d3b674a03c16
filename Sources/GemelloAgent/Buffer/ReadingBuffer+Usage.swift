import GemelloCore
import GemelloSQLite

/// What the buffer holds, for the agent's health messages.
extension ReadingBuffer {
    public struct Usage: Sendable, Equatable {
        /// Bytes of database pages in use (free pages left by deletions not counted).
        public var bytes: Int64
        /// When the oldest reading still waiting (sent or not, unacknowledged) was accepted, Unix ms;
        /// `nil` when the buffer is empty or the buffer predates acceptance times.
        public var oldestAcceptedAt: Int64?
    }

    /// Reads the page counts and the oldest commit; a failure reads as an empty usage rather than
    /// stopping a heartbeat.
    public func usage() -> Usage {
        state.withLock { state in
            (try? state.db.reading { db -> Usage in
                let pages = try db.scalarInt("PRAGMA page_count") ?? 0
                let free = try db.scalarInt("PRAGMA freelist_count") ?? 0
                let pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
                var oldest: Int64?
                if let first = try db.scalarInt("SELECT min(id) FROM readings") {
                    oldest = try Self.acceptedAt(first, in: db)
                }
                return Usage(bytes: (pages - free) * pageSize, oldestAcceptedAt: oldest)
            }) ?? Usage(bytes: 0, oldestAcceptedAt: nil)
        }
    }
}
