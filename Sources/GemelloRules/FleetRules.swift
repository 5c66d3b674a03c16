/// The fleet conditions of a rule set: an agent offline (for the rule's `for`), and at least N
/// agents (of one area) offline within a time: one grouped alert, which also holds back the
/// single-agent alerts of the agents it covers (inhibition, as Alertmanager's).
struct FleetRules: Sendable {
    /// Per rule: agents offline since (wall ms), their location.
    private var offline: [String: (since: Int64, location: AlertRule.Point?)] = [:]
    /// (rule, agent) raised.
    private var raised: Set<AgentKey> = []
    /// Per grouped rule: the agents of its open alert.
    private var groups: [Int: [String]] = [:]

    struct AgentKey: Hashable {
        var rule: Int
        var agent: String
    }


    mutating func agent(_ agent: String, offline isOffline: Bool, planned: Bool, at now: Int64, location: AlertRule.Point?,
                        rules: [AlertRule], into events: inout [RuleEvent]) {
        if isOffline {
            // A planned stop (the agent's own goodbye) is not an outage.
            guard !planned else { return }
            if offline[agent] == nil { offline[agent] = (now, location) }
        } else {
            guard offline.removeValue(forKey: agent) != nil else { return }
            for (i, rule) in rules.enumerated() where rule.match.agent?.matches(Substring(agent)) ?? true {
                if raised.remove(AgentKey(rule: i, agent: agent)) != nil {
                    events.append(RuleEvent(rule: i, subject: .agent(agent), edge: .clear(at: now, value: 0)))
                }
                guard var members = groups[i], let k = members.firstIndex(of: agent) else { continue }
                members.remove(at: k)
                guard case .agentsOffline(let count, _) = rule.condition else { continue }
                if members.count < count {
                    groups[i] = nil
                    events.append(RuleEvent(rule: i, subject: .group(members), edge: .clear(at: now, value: Double(members.count))))
                } else {
                    groups[i] = members
                }
            }
        }
        tick(now: now, rules: rules, into: &events)
    }

    mutating func tick(now: Int64, rules: [AlertRule], into events: inout [RuleEvent]) {
        guard !offline.isEmpty else { return }
        // Grouped rules first, so the single-agent alerts they cover are held back.
        for (i, rule) in rules.enumerated() {
            guard case .agentsOffline(let count, let within) = rule.condition else { continue }
            let members = offline.filter { entry in
                (rule.match.agent?.matches(Substring(entry.key)) ?? true) && Self.inside(entry.value.location, rule.area)
            }
            if var group = groups[i] {
                let added = members.keys.filter { !group.contains($0) }.sorted()
                guard !added.isEmpty else { continue }
                group += added
                groups[i] = group
                events.append(RuleEvent(rule: i, subject: .group(group), edge: .hold(at: now, value: Double(group.count), reraised: false)))
            } else {
                let recent = members.filter { now - $0.value.since <= within }.keys.sorted()
                guard recent.count >= count else { continue }
                groups[i] = recent
                events.append(RuleEvent(rule: i, subject: .group(recent), edge: .raise(at: now, value: Double(recent.count))))
            }
        }
        for (i, rule) in rules.enumerated() {
            guard case .agentOffline = rule.condition else { continue }
            for agent in offline.keys.sorted() where now - offline[agent]!.since >= rule.forMilliseconds {
                let entry = offline[agent]!
                let key = AgentKey(rule: i, agent: agent)
                guard !raised.contains(key), rule.match.agent?.matches(Substring(agent)) ?? true else { continue }
                if groups.values.contains(where: { $0.contains(agent) }) { continue }  // inhibited by a grouped alert
                raised.insert(key)
                events.append(RuleEvent(rule: i, subject: .agent(agent), edge: .raise(at: now, value: Double(now - entry.since) / 1000)))
            }
        }
    }

    mutating func restore(rule: Int, agent: String, active: Bool) {
        if active { raised.insert(AgentKey(rule: rule, agent: agent)) } else { raised.remove(AgentKey(rule: rule, agent: agent)) }
    }

    mutating func restore(rule: Int, group: [String], active: Bool) { groups[rule] = active ? group : nil }

    /// Whether a location is inside a rule's area (a rule about the site itself covers everyone).
    static func inside(_ location: AlertRule.Point?, _ area: AlertRule.Area) -> Bool {
        switch area {
        case .site: return true
        case .polygon(_, let points, _):
            guard let p = location else { return false }
            return Geometry.contains(points, p)
        case .circle(_, let center, let radius):
            guard let p = location else { return false }
            return Geometry.distanceKm(center, p) <= radius
        }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

enum Geometry {
    /// Ray casting over (latitude, longitude): fine for areas the size of a metropolitan city.
    static func contains(_ ring: [AlertRule.Point], _ p: AlertRule.Point) -> Bool {
        var inside = false
        var j = ring.count - 1
        for i in ring.indices {
            let (a, b) = (ring[i], ring[j])
            if (a.latitude > p.latitude) != (b.latitude > p.latitude),
               p.longitude < (b.longitude - a.longitude) * (p.latitude - a.latitude) / (b.latitude - a.latitude) + a.longitude {
                inside.toggle()
            }
            j = i
        }
        return inside
    }

    static func distanceKm(_ a: AlertRule.Point, _ b: AlertRule.Point) -> Double {
        let r = 6371.0088, rad = Double.pi / 180
        let dLat = (b.latitude - a.latitude) * rad, dLon = (b.longitude - a.longitude) * rad
        let h = sin(dLat / 2) * sin(dLat / 2) + cos(a.latitude * rad) * cos(b.latitude * rad) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * r * asin(min(1, h.squareRoot()))
    }
}
