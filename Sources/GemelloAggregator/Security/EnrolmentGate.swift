import GemelloCore
import Logging

/// The aggregator's own check of who sent a batch, behind the broker's ACLs: with
/// `security.enrolment` set, a batch is taken only from an enrolled, unrevoked agent and only
/// when it is signed with that agent's key (docs/security.md). A broker that lets agent A publish
/// on B's topic (a misconfigured ACL) or an agent revoked a moment ago therefore still gets nothing
/// into the twin. The registry is followed as a ``WatchedFile``.
public final class EnrolmentGate: Sendable {
    private let file: WatchedFile<Enrolment>

    /// Loads the registry; throws when it cannot be read or is invalid.
    public init(path: String, logger: Logger) throws(AggregatorError) {
        file = try WatchedFile(path: path, what: "enrolment registry", key: "security.enrolment", logger: logger,
                               describe: { registry in
                                   ["active": "\(registry.records.filter { $0.status == .active }.count)",
                                    "revoked": "\(registry.records.filter { $0.status == .revoked }.count)"]
                               },
                               parse: { text, path throws(CoreError) in try Enrolment.parse(text, file: path) })
    }

    public var path: String { file.path }

    /// Why this batch must be refused, or nil. Before refusing, the registry is looked at again
    /// (an agent enrolled or re-enrolled a moment ago is not kept waiting for its resend).
    public func refusal(agent: String, payload: [UInt8]) -> String? {
        guard file.value.refusal(agent: agent, payload: payload) != nil else { return nil }
        return file.freshValue.refusal(agent: agent, payload: payload)
    }

    /// The registry in force now.
    public var registry: Enrolment { file.value }
}
