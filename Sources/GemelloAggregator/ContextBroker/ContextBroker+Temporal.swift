import GemelloCore
import GemelloNGSILD

/// The temporal evolution of entities (ETSI GS CIM 009 v1.8, clause 5.7.3–5.7.4): the history of
/// every telemetry attribute comes from the twin's columnar history, with each instance's lineage;
/// other attributes (client data, location, relationships) have no kept history and appear with
/// their current instance.
extension ContextBroker {
    /// One attribute's instances in a temporal reply.
    public struct AttributeHistory: Sendable {
        /// Expanded name.
        public var name: String
        public var unitCode: String?
        public var points: SeriesChunk
        /// For aggregation: hourly rollups of the readings past their retention (disjoint from `points`).
        public var summaries: [PeriodAggregate.Summary] = []
        /// A client attribute's kept instances (`POST /temporal/entities`), oldest first, with
        /// their instanceIds; `points` is then empty.
        public var kept: [(id: String, instance: Attribute)] = []
        /// The agent whose batches carried the points, and its site (empty for client data).
        public var agent: String
        public var site: String?

        /// The instants of the history, oldest first.
        var times: [Int64] { kept.isEmpty ? points.timestamps : kept.map { $0.instance.observedAt ?? $0.instance.createdAt } }

        /// Keeps the instances whose instant lies in `range`.
        mutating func trim(to range: ClosedRange<Int64>) {
            points = HistoryStore.trimmed(points, to: range)
            kept = kept.filter { range.contains($0.instance.observedAt ?? $0.instance.createdAt) }
        }
    }

    public struct TemporalEntity: Sendable {
        /// The entity now, without the attributes that have a history.
        public var current: Entity
        public var histories: [AttributeHistory]
    }

    /// Temporal entities, and when a history was longer than the instance limit, the time range
    /// this reply covers (the client pages on from its end: clause 6.3.10, `Content-Range`).
    public struct TemporalReply: Sendable {
        public var entities: [TemporalEntity]
        public var partial: ClosedRange<Int64>?
        public var total: Int?
    }

    /// The agent and series behind an agent-owned attribute of a telemetry entity
    /// (`urn:ngsi-ld:<type>:<agent>:<sensor>`, series `<sensor>/<Smart Data Models term>`).
    func telemetrySeries(_ entity: Entity, _ name: String) -> (agent: String, series: String)? {
        guard let owner = entity.attributes[name]?.first(where: { $0.owner != nil })?.owner,
              entity.attributes[name]?.first?.kind == .property,
              let marker = entity.id.range(of: ":\(owner):", options: .backwards) else { return nil }
        let sensor = entity.id[marker.upperBound...]
        guard !sensor.isEmpty else { return nil }
        return (owner, "\(sensor)/\(contexts.smartDataModels.compact(name))")
    }

    /// GET /temporal/entities/{id}.
    public func temporalEntity(id: String, attributes: Set<String>?, query: TemporalQuery) throws(NGSILDError) -> TemporalReply {
        guard let entity = entity(id: id) else { throw .notFound("no entity with id \(id)") }
        if let attributes, !attributes.isEmpty, !attributes.contains(where: { entity.attributes[$0] != nil }) {
            throw .notFound("entity \(id) has none of the attributes \(attributes.map(contexts.core.compact).sorted().joined(separator: ", "))")
        }
        return try temporal([entity], attributes: attributes, query: query, total: nil)
    }

    /// GET /temporal/entities and POST /temporal/entityOperations/query: the entities the query
    /// selects by their current state (type, id, q, geo-query, attrs), each with its evolution.
    public func temporalQuery(_ selection: EntityQuery, query: TemporalQuery) throws(NGSILDError) -> TemporalReply {
        let (entities, total) = try self.query(selection)
        return try temporal(entities, attributes: selection.attributes, query: query, total: total)
    }

    private func temporal(_ entities: [Entity], attributes: Set<String>?, query: TemporalQuery, total: Int?) throws(NGSILDError) -> TemporalReply {
        // Aggregation reads up to a hundred times more raw instances than a reply may hold (its
        // periods are fewer); past that it pages like raw instances do.
        var limit = limits.maxInstances
        if case .aggregated = query.representation { limit = limits.maxInstances * 100 }
        var out: [TemporalEntity] = []
        var cut: Int64?  // ascending: the last instant every attribute is complete up to
        var earliest: Int64?  // lastN: the oldest instant returned when lastN was capped
        var sites: [String: String?] = [:]
        for entity in entities {
            var current = entity
            var histories: [AttributeHistory] = []
            for name in entity.attributes.keys.sorted() {
                if let attributes, !attributes.contains(name) { current.attributes[name] = nil; continue }
                let range = query.range
                guard let (agent, series) = telemetrySeries(entity, name) else {
                    // Client data: its kept instances, if it was written through the temporal API.
                    let kept: [(id: String, instance: Attribute)]
                    do {
                        if query.timeProperty != .observedAt {
                            kept = try documents.instances(entity: entity.id, attribute: name, in: Int64.min...Int64.max, lastN: nil, limit: limit + 1)
                                .filter { range.contains(query.timeProperty == .createdAt ? $0.instance.createdAt : $0.instance.modifiedAt) }
                                .suffix(query.lastN ?? Int.max).map { $0 }
                        } else {
                            kept = try documents.instances(entity: entity.id, attribute: name, in: range, lastN: query.lastN.map { min($0, limit) },
                                                           limit: limit + 1)
                        }
                    } catch {
                        throw NGSILDError(.internalError, "cannot read the history of \(name) of \(entity.id): \(error.message)")
                    }
                    guard !kept.isEmpty else { continue }
                    let h = AttributeHistory(name: name, unitCode: entity.attributes[name]?.first?.unitCode,
                                             points: SeriesChunk(timestamps: [], values: [], sources: [], sourceIndex: []),
                                             kept: kept, agent: "", site: nil)
                    let times = h.times
                    if query.lastN == nil, times.count > limit {
                        let first = times.firstIndex(of: times[limit])!
                        cut = min(cut ?? .max, first > 0 ? times[first - 1] : times[limit])
                    }
                    histories.append(h)
                    current.attributes[name] = nil
                    continue
                }
                var points: SeriesChunk?
                do {
                    if query.timeProperty != .observedAt {
                        // Commit times are not indexed: scan at most a hundred pages of readings.
                        let scanned = try history.points(agent: agent, series: series, in: Int64.min...Int64.max, limit: limits.maxInstances * 100)
                        if let scanned, scanned.count > limits.maxInstances * 100 {
                            throw NGSILDError(.tooManyResults, "timeproperty=\(query.timeProperty.rawValue) scans \(series) of \(agent) in observation "
                                              + "order and it holds more than \(limits.maxInstances * 100) readings; use timeproperty=observedAt "
                                              + "with timerel/timeAt to select by observation time")
                        }
                        points = scanned.map { Self.filterCommitted($0, in: range) }
                        if let n = query.lastN, let p = points, p.count > n { points = p.suffix(n) }
                    } else if let n = query.lastN {
                        points = try history.lastPoints(agent: agent, series: series, n: min(n, limit), before: range.upperBound)
                            .map { HistoryStore.trimmed($0, to: range) }
                        if n > limit, let p = points, p.count == limit { earliest = max(earliest ?? .min, p.timestamps[0]) }
                    } else {
                        points = try history.points(agent: agent, series: series, in: range, limit: limit)
                    }
                } catch let error as NGSILDError {
                    throw error
                } catch {
                    throw NGSILDError(.internalError, "cannot read the history of \(series) of \(agent): \(error)")
                }
                var summaries: [PeriodAggregate.Summary] = []
                if case .aggregated = query.representation, query.lastN == nil, query.timeProperty == .observedAt {
                    // Readings past their retention live on as hourly rollups, disjoint from the raw ones.
                    do {
                        summaries = try history.rollups(agent: agent, series: series, in: range).map {
                            PeriodAggregate.Summary(time: $0.hour, count: Int($0.count), sum: $0.sum, sumOfSquares: $0.sumOfSquares,
                                                    min: $0.min, max: $0.max)
                        }
                    } catch {
                        throw NGSILDError(.internalError, "cannot read the rollups of \(series) of \(agent): \(error.message)")
                    }
                }
                guard let p = points ?? (summaries.isEmpty ? nil : SeriesChunk(timestamps: [], values: [], sources: [], sourceIndex: [])) else { continue }
                if query.lastN == nil, p.count > limit {
                    // The page ends at an instant: all of it or none (the next page starts after it).
                    let next = p.timestamps[limit]
                    let first = p.timestamps.firstIndex(of: next)!
                    cut = min(cut ?? .max, first > 0 ? p.timestamps[first - 1] : next)
                }
                if sites[agent] == nil { sites[agent] = .some(try? history.site(ofAgent: agent)) }
                histories.append(AttributeHistory(name: name, unitCode: entity.attributes[name]?.first?.unitCode, points: p,
                                                  summaries: summaries, agent: agent, site: sites[agent] ?? nil))
                current.attributes[name] = nil
            }
            out.append(TemporalEntity(current: current, histories: histories))
        }
        var partial: ClosedRange<Int64>?
        if let cut {
            // Every attribute up to `cut` inclusive; the next page starts after it.
            for e in out.indices {
                for h in out[e].histories.indices { out[e].histories[h].trim(to: Int64.min...cut) }
            }
            let start = out.flatMap(\.histories).compactMap(\.times.first).min() ?? cut
            partial = min(start, cut)...cut
        } else if let earliest {
            for e in out.indices {
                for h in out[e].histories.indices { out[e].histories[h].trim(to: earliest...Int64.max) }
            }
            let end = out.flatMap(\.histories).compactMap(\.times.last).max() ?? earliest
            partial = earliest...max(earliest, end)
        }
        return TemporalReply(entities: out, partial: partial, total: total)
    }

    /// DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}: one reading of an agent's series
    /// (a correction: the reading is gone from the history; the attribute's latest value stays).
    public func deleteInstance(entity id: String, attribute name: String, instanceID: String) throws(NGSILDError) {
        guard let entity = entity(id: id) else { throw .notFound("no entity with id \(id)") }
        guard entity.attributes[name] != nil else { throw .notFound("entity \(id) has no attribute \(contexts.core.compact(name))") }
        guard let (agent, series) = telemetrySeries(entity, name) else {
            let deleted: Bool
            do { deleted = try documents.deleteInstance(entity: id, attribute: name, id: instanceID) } catch {
                throw NGSILDError(.internalError, "cannot delete instance \(instanceID): \(error.message)")
            }
            guard deleted else { throw .notFound("attribute \(contexts.core.compact(name)) of \(id) has no instance \(instanceID)") }
            return
        }
        let parts = instanceID.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 || parts.count == 7, instanceID.hasPrefix("urn:ngsi-ld:gemello:"),
              let epoch = UInt64(parts[3]), let sequence = UInt64(parts[4]), let time = Int64(parts[5]),
              let ordinal = parts.count == 7 ? Int(parts[6]) : 0 else {
            throw .notFound("\(instanceID) is not an instance of this broker (urn:ngsi-ld:gemello:<epoch>:<batch>:<ms>[:<k>])")
        }
        let deleted: Bool
        do { deleted = try history.deletePoint(agent: agent, series: series, time: time, epoch: epoch, sequence: sequence, ordinal: ordinal) } catch {
            throw NGSILDError(.internalError, "cannot delete from the history of \(series) of \(agent): \(error.message)")
        }
        guard deleted else { throw .notFound("attribute \(contexts.core.compact(name)) of \(id) has no instance \(instanceID)") }
    }

    /// DELETE /temporal/entities/{id}/attrs/{attr}: the attribute's whole kept history (its
    /// current value stays: delete it with DELETE /entities/{id}/attrs/{attr}).
    public func deleteHistory(entity id: String, attribute name: String) throws(NGSILDError) {
        guard let entity = entity(id: id) else { throw .notFound("no entity with id \(id)") }
        guard entity.attributes[name] != nil else { throw .notFound("entity \(id) has no attribute \(contexts.core.compact(name))") }
        guard let (agent, series) = telemetrySeries(entity, name) else {
            do { _ = try documents.deleteInstances(entity: id, attribute: name) } catch {
                throw NGSILDError(.internalError, "cannot delete the history of \(name) of \(id): \(error.message)")
            }
            return
        }
        do { _ = try history.deleteHistory(agent: agent, series: series) } catch {
            throw NGSILDError(.internalError, "cannot delete the history of \(series) of \(agent): \(error.message)")
        }
    }

    // MARK: - Temporal writes of client data

    /// POST /temporal/entities (clause 5.6.11): creates the entity, or adds the given instances to
    /// it; every instance is kept (`ngsi_temporal`) and the newest one per attribute and datasetId
    /// becomes the attribute's current value. Whether the entity was created.
    public func writeTemporal(_ entity: Entity) throws(NGSILDError) -> Bool {
        try write { () throws(NGSILDError) in
            let current = index.entity(entity.id)
            let (next, instances) = try temporalChanges(current ?? Entity(id: entity.id, types: entity.types, createdAt: now, modifiedAt: now),
                                                        types: entity.types, attributes: entity.attributes)
            return ([.put(next), .instances(instances)], current == nil)
        }
    }

    /// POST /temporal/entities/{id}/attrs (clause 5.6.12): adds instances to an existing entity.
    public func appendTemporal(id: String, attributes: [String: [Attribute]]) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            let (next, instances) = try temporalChanges(try existing(id), types: [], attributes: attributes)
            return ([.put(next), .instances(instances)], ())
        }
    }

    private func temporalChanges(_ base: Entity, types: [String], attributes: [String: [Attribute]]) throws(NGSILDError)
        -> (Entity, [EntityDocuments.TemporalInstance]) {
        var entity = base
        for type in types where !entity.types.contains(type) { entity.types.append(type) }
        var rows: [EntityDocuments.TemporalInstance] = []
        let stamp = now
        for (name, list) in attributes.sorted(by: { $0.key < $1.key }) {
            if entity.attributes[name]?.contains(where: { $0.owner != nil }) == true { throw Self.ownedError(entity, name) }
            for instance in list {
                var kept = instance
                kept.createdAt = stamp
                kept.modifiedAt = stamp
                rows.append(.init(entity: entity.id, attribute: name, id: Self.clientInstanceID(stamp, rows.count), instance: kept))
                // The newest instance per datasetId is the attribute's value now.
                let time = instance.observedAt ?? stamp
                var instances = entity.attributes[name] ?? []
                if let i = instances.firstIndex(where: { $0.datasetId == instance.datasetId }) {
                    if time >= (instances[i].observedAt ?? .min) {
                        kept.createdAt = instances[i].createdAt
                        instances[i] = kept
                    }
                } else {
                    instances.append(kept)
                }
                entity.attributes[name] = instances
            }
        }
        entity.modifiedAt = stamp
        return (entity, rows)
    }

    /// `urn:ngsi-ld:gemello:client:<write ms>:<n>-<random>`: unique per kept instance.
    static func clientInstanceID(_ stamp: Int64, _ n: Int) -> String {
        "urn:ngsi-ld:gemello:client:\(stamp):\(n)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// The points whose batch was committed within `range` (timeproperty createdAt/modifiedAt:
    /// an instance of the twin's history is created, and last modified, when its batch commits).
    static func filterCommitted(_ chunk: SeriesChunk, in range: ClosedRange<Int64>) -> SeriesChunk {
        let keep = chunk.sources.map { range.contains($0.committedAt) }
        let indexes = (0..<chunk.count).filter { keep[Int(chunk.sourceIndex[$0])] }
        return SeriesChunk(timestamps: indexes.map { chunk.timestamps[$0] }, values: indexes.map { chunk.values[$0] },
                           sources: chunk.sources, sourceIndex: indexes.map { chunk.sourceIndex[$0] })
    }

    /// The instanceId of point `i` of a history: `urn:ngsi-ld:gemello:<epoch>:<sequence>:<time ms>`,
    /// with `:<k>` for the k-th further point of that batch at that instant. It names the batch
    /// that delivered the value (lineage) and finds the point again for instance deletion.
    public static func instanceID(_ points: SeriesChunk, _ i: Int) -> String {
        let source = points.source(of: i)
        var k = 0
        var j = i - 1
        while j >= 0, points.timestamps[j] == points.timestamps[i] {
            if points.sourceIndex[j] == points.sourceIndex[i] { k += 1 }
            j -= 1
        }
        return "urn:ngsi-ld:gemello:\(source.epoch):\(source.sequence):\(points.timestamps[i])" + (k > 0 ? ":\(k)" : "")
    }
}
