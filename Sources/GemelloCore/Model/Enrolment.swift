/// The enrolment registry: which agents may send batches, with the key each signs them with.
///
/// One file (`agents.txt` in the PKI folder, mode 0600: it holds keys) that `gemello agent
/// enroll` and `gemello agent revoke` write and the aggregator reads (`security.enrolment`),
/// re-reading it when it changes. One agent per line, fields separated by single spaces:
///
/// ```
/// # gemello enrolment registry v1
/// <agent-id> active <batch key, 64 hex digits> <certificate serial or -> <enrolled at, ISO 8601>
/// <agent-id> revoked <batch key> <serial> <enrolled at> <revoked at>
/// ```
public struct Enrolment: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case active, revoked }

    public struct Record: Sendable, Equatable {
        public var agentID: String
        public var status: Status
        public var batchKey: [UInt8]
        /// The client certificate's serial (hex), or nil for a password identity.
        public var serial: String?
        public var enrolledAt: String
        public var revokedAt: String?

        public init(agentID: String, status: Status = .active, batchKey: [UInt8], serial: String?, enrolledAt: String, revokedAt: String? = nil) {
            self.agentID = agentID
            self.status = status
            self.batchKey = batchKey
            self.serial = serial
            self.enrolledAt = enrolledAt
            self.revokedAt = revokedAt
        }
    }

    public private(set) var records: [Record]
    /// Position of each agent's record (the aggregator looks one up for every batch).
    private var index: [String: Int] = [:]

    public init(records: [Record] = []) {
        self.records = []
        for record in records { upsert(record) }
    }

    public static let header = "# gemello enrolment registry v1: <agent> active|revoked <batch key> <cert serial|-> <enrolled> [<revoked>]"

    public subscript(agentID: String) -> Record? { index[agentID].map { records[$0] } }

    /// Adds or replaces the record of `record.agentID` (re-enrolment issues a new key).
    public mutating func upsert(_ record: Record) {
        if let i = index[record.agentID] {
            records[i] = record
        } else {
            index[record.agentID] = records.count
            records.append(record)
        }
    }

    /// Parses the file's text; `file` names it in errors (which give the line).
    public static func parse(_ text: String, file: String) throws(CoreError) -> Enrolment {
        var registry = Enrolment()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ").map(String.init)
            func bad(_ what: String) -> CoreError {
                CoreError(.invalidConfiguration, "enrolment registry: \(what)", file: file, line: n + 1,
                          fix: "the file is written by 'gemello agent enroll' and 'gemello agent revoke'; restore it from them or a backup")
            }
            guard f.count == 5 || f.count == 6 else { throw bad("expected 5 or 6 fields, found \(f.count)") }
            guard Topics.isValidAgentID(f[0]) else { throw bad("'\(f[0])' is not a valid agent id") }
            guard let status = Status(rawValue: f[1]) else { throw bad("status must be active or revoked, not '\(f[1])'") }
            guard let key = BatchKey.parse(f[2]) else { throw bad("the batch key of '\(f[0])' is not \(BatchKey.length * 2) hex digits") }
            guard (status == .revoked) == (f.count == 6) else { throw bad("a revoked agent has a sixth field (revoked at), an active one none") }
            guard registry[f[0]] == nil else { throw bad("agent '\(f[0])' is listed twice") }
            registry.upsert(Record(agentID: f[0], status: status, batchKey: key, serial: f[3] == "-" ? nil : f[3],
                                   enrolledAt: f[4], revokedAt: f.count == 6 ? f[5] : nil))
        }
        return registry
    }

    /// The file's text.
    public func format() -> String {
        var out = Self.header + "\n"
        for r in records {
            out += "\(r.agentID) \(r.status.rawValue) \(r.batchKey.hexString) \(r.serial ?? "-") \(r.enrolledAt)"
            if let revokedAt = r.revokedAt { out += " \(revokedAt)" }
            out += "\n"
        }
        return out
    }

    /// Why a batch that arrived on `agent`'s topic must be refused, or nil to accept it.
    public func refusal(agent: String, payload: [UInt8]) -> String? {
        guard let record = self[agent] else {
            return "agent '\(agent)' is not enrolled (fix: gemello agent enroll \(agent))"
        }
        if record.status == .revoked {
            return "agent '\(agent)' was revoked at \(record.revokedAt ?? "?")"
        }
        guard WireFormat.signature(of: payload) != nil else {
            return "the batch is not signed; every enrolled agent must set batch-key-file (from gemello agent enroll)"
        }
        guard WireFormat.verify(payload, key: record.batchKey) else {
            return "the batch's signature is not agent '\(agent)''s: it was published by another identity or altered on the way"
        }
        return nil
    }
}
