/// The MQTT topic tree. Everything lives under `gemello/v1/agents/<agent-id>/`.
public enum Topics {
    public static let root = "gemello/v1/agents"

    /// Agent → aggregator: wire-format batches (QoS 1).
    public static func data(agent: String) -> String { "\(root)/\(agent)/data" }
    /// Aggregator → agent: ``BatchAck`` after the twin store committed (QoS 1).
    public static func ack(agent: String) -> String { "\(root)/\(agent)/ack" }
    /// Agent → aggregator: ``AgentBirth`` on every connect (retained).
    public static func birth(agent: String) -> String { "\(root)/\(agent)/birth" }
    /// Broker → aggregator: the agent's Last Will, ``AgentDeath`` (retained).
    public static func death(agent: String) -> String { "\(root)/\(agent)/death" }
    /// Agent → aggregator: periodic ``AgentHealth``.
    public static func health(agent: String) -> String { "\(root)/\(agent)/health" }

    /// Aggregator → agents: ``AggregatorState``, retained; `offline` is also its Last Will. Agents
    /// publish batches only while it says `online` and otherwise keep them in their own buffer.
    public static let aggregatorState = "gemello/v1/aggregator/state"

    /// Aggregator → agents, when several aggregators share the agents' batches (`ingest.share-group`):
    /// each member's ``AggregatorState`` under its client id, retained, `offline` as its Last Will.
    /// Agents send while any of them (or the single aggregator's state) says `online`.
    public static func aggregatorState(member clientID: String) -> String { "\(aggregatorState)/\(clientID)" }

    /// What agents subscribe to for aggregator states: the single one and every group member's.
    public static let aggregatorStates = [aggregatorState, "\(aggregatorState)/+"]

    /// Whether `topic` carries an aggregator state (the single one or a group member's).
    public static func isAggregatorState(_ topic: String) -> Bool {
        topic == aggregatorState || (topic.hasPrefix(aggregatorState + "/") && !topic.dropFirst(aggregatorState.count + 1).contains("/"))
    }

    /// Aggregator → itself: a timestamp it publishes every second and times on arrival, to know
    /// how far behind its ingest runs (see `Hearing` in the aggregator).
    public static func aggregatorProbe(clientID: String) -> String { "gemello/v1/aggregator/probe/\(clientID)" }

    /// What the aggregator subscribes to.
    public static let aggregatorSubscriptions = ["\(root)/+/data", "\(root)/+/birth", "\(root)/+/death", "\(root)/+/health"]

    /// What a member of share group `group` subscribes to: batches and health reports through an
    /// MQTT shared subscription (`$share/<group>/…`: the broker hands each message to one member),
    /// births and deaths (retained, which shared subscriptions never deliver) to every member.
    public static func aggregatorSubscriptions(shareGroup group: String?) -> [String] {
        guard let group else { return aggregatorSubscriptions }
        return ["$share/\(group)/\(root)/+/data", "$share/\(group)/\(root)/+/health", "\(root)/+/birth", "\(root)/+/death"]
    }

    /// The kind of message and the agent id for a topic under ``root``.
    public static func parse(_ topic: String) -> (agent: String, kind: String)? {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "gemello", parts[1] == "v1", parts[2] == "agents" else { return nil }
        return (String(parts[3]), String(parts[4]))
    }

    /// Agent ids become topic levels and entity ids: lowercase letters, digits, `-`, `_`, `.`.
    public static func isValidAgentID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }
}
