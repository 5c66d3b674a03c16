import Foundation
import GemelloCore
import Logging
import Synchronization

/// A file the aggregator follows while it runs (the enrolment registry, the API tokens): parsed
/// at start, re-read when its modification time or size changes (looked at no more than once a
/// second), so `gemello agent revoke` and `gemello token revoke` take effect within a second
/// without a restart. A file that becomes unreadable or invalid keeps the last good content in
/// force, and the log says so.
public final class WatchedFile<Value: Sendable>: Sendable {
    public let path: String
    /// What the file is, for messages ("enrolment registry").
    private let what: String
    private let key: String
    private let parse: @Sendable (String, String) throws(CoreError) -> Value
    private let describe: @Sendable (Value) -> Logger.Metadata
    private let logger: Logger
    private struct State {
        var value: Value
        var stamp: Stamp
        var checkedAt: ContinuousClock.Instant
    }
    private struct Stamp: Equatable {
        var modified: Date?
        var size: Int?
    }
    private let state: Mutex<State>

    /// Loads the file; throws a configuration error naming `key` when it cannot be read or parsed.
    public init(path: String, what: String, key: String, logger: Logger,
                describe: @escaping @Sendable (Value) -> Logger.Metadata = { _ in [:] },
                parse: @escaping @Sendable (String, String) throws(CoreError) -> Value) throws(AggregatorError) {
        self.path = path
        self.what = what
        self.key = key
        self.parse = parse
        self.describe = describe
        self.logger = logger
        let (value, stamp) = try Self.load(path, what: what, key: key, parse: parse)
        state = Mutex(State(value: value, stamp: stamp, checkedAt: .now))
        var metadata = describe(value)
        metadata["path"] = "\(path)"
        logger.info("\(what) loaded", metadata: metadata)
    }

    private static func stamp(_ path: String) -> Stamp {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return Stamp(modified: attributes?[.modificationDate] as? Date, size: (attributes?[.size] as? NSNumber)?.intValue)
    }

    private static func load(_ path: String, what: String, key: String,
                             parse: (String, String) throws(CoreError) -> Value) throws(AggregatorError) -> (Value, Stamp) {
        let stamp = stamp(path)
        let text: String
        do { text = try FileText.read(path) } catch {
            throw AggregatorError(.configuration, "\(key): cannot read the \(what) \(path): \(error.reason). "
                                  + "Fix: check the path, and that the aggregator's user may read the file")
        }
        do { return (try parse(text, path), stamp) } catch {
            throw AggregatorError(.configuration, "\(key): \(error)")
        }
    }

    /// The content in force now (re-read first if the file changed).
    public var value: Value {
        reloadIfChanged()
        return state.withLock { $0.value }
    }

    /// The content after looking at the file again now (at most every 100 ms): for a caller about
    /// to refuse something a change of the last second may allow (an agent enrolled just now).
    public var freshValue: Value {
        reloadIfChanged(within: .milliseconds(100))
        return state.withLock { $0.value }
    }

    private func reloadIfChanged(within interval: Duration = .seconds(1)) {
        let now = ContinuousClock.now
        let due = state.withLock { s -> Bool in
            guard now - s.checkedAt >= interval else { return false }
            s.checkedAt = now
            return true
        }
        guard due else { return }
        let current = Self.stamp(path)
        guard state.withLock({ $0.stamp != current }) else { return }
        do {
            let (value, stamp) = try Self.load(path, what: what, key: key, parse: parse)
            state.withLock { $0.value = value; $0.stamp = stamp }
            logger.notice("\(what) reloaded", metadata: describe(value))
        } catch {
            state.withLock { $0.stamp = current }
            logger.error("the \(what) could not be reloaded; the previous one stays in force", metadata: ["error": "\(error)"])
        }
    }
}
