import GemelloCore
import Synchronization

/// A wall clock tests move by hand.
public final class ManualWallClock: WallClock {
    private let now: Mutex<Int64>

    public init(_ start: Int64 = 1_700_000_000_000) { now = Mutex(start) }

    public func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    public func advance(milliseconds: Int64) { now.withLock { $0 += milliseconds } }
}
