import GemelloCore
import GemelloStorage

extension TwinStore {
    /// Every entity with its latest values, optionally only of one `type` or one `agent`.
    public func entities(type: String? = nil, agent: String? = nil) throws(AggregatorError) -> [TwinEntity] {
        let all: [TwinEntity] = try read { db in try Self.entities(agent: agent, in: db) }
        guard let type else { return all }
        return all.filter { $0.type == type }
    }

    /// The same, read through `db` (inside an ingest transaction: what it is about to commit).
    static func entities(agent: String?, in db: any StoreConnection) throws -> [TwinEntity] {
            // Two statements, not "?1 IS NULL OR agent_id = ?1": that form cannot use the index and
            // scanned every series of a large twin for each batch. Sensors first: the series rows
            // are read while the entities are built.
            let bound: [StoreValue] = agent.map { [.text($0)] } ?? []
            let sensorRows = try db.query("SELECT agent_id, sensor_id, entity_type FROM sensors" + (agent == nil ? "" : " WHERE agent_id = ?1"), bound)
            var types: [String: String] = [:]
            while try sensorRows.step() { types["\(sensorRows.text(0))/\(sensorRows.text(1))"] = sensorRows.text(2) }
            let rows = try db.query("""
                SELECT s.agent_id, s.name, s.unit, s.latest_ts, s.latest_value, s.count, a.latitude, a.longitude
                FROM series s LEFT JOIN agents a ON a.id = s.agent_id
                WHERE s.latest_ts IS NOT NULL \(agent == nil ? "" : "AND s.agent_id = ?1") ORDER BY s.agent_id, s.name
                """, bound)
            var entities: [TwinEntity] = []
            var index: [String: Int] = [:]
            while try rows.step() {
                let agent = rows.text(0)
                let info = SeriesInfo(name: rows.text(1), unit: rows.text(2))
                let sensor = String(info.sensor)
                let key = "\(agent)/\(sensor)"
                let attribute = TwinEntity.Attribute(name: String(info.attribute), unit: info.unit, value: rows.double(4),
                                                     observedAt: rows.int64(3), count: rows.int64(5))
                if let position = index[key] {
                    entities[position].attributes.append(attribute)
                } else {
                    let entityType = types[key] ?? "DeviceMeasurement"
                    index[key] = entities.count
                    entities.append(TwinEntity(
                        id: TwinEntity.entityID(type: entityType, agent: agent, sensor: sensor), type: entityType,
                        agentID: agent, sensorID: sensor,
                        latitude: rows.isNull(6) ? nil : rows.double(6), longitude: rows.isNull(7) ? nil : rows.double(7),
                        attributes: [attribute]))
                }
            }
            return entities
    }

    /// One entity by its id, or `nil`.
    public func entity(id: String) throws(AggregatorError) -> TwinEntity? {
        try entities().first { $0.id == id }
    }

    /// Readings stored per series of `agent` (series name → count), for checks and tests.
    public func seriesCounts(agent: String) throws(AggregatorError) -> [String: Int64] {
        try read { db in
            let rows = try db.query("SELECT name, count FROM series WHERE agent_id = ?", [.text(agent)])
            var result: [String: Int64] = [:]
            while try rows.step() { result[rows.text(0)] = rows.int64(1) }
            return result
        }
    }

    /// The stored history of one series in observation-time order (readings with the same time in
    /// arrival order), as (timestamp ms, value) pairs. Batches may arrive out of order (resends
    /// after an outage); the history does not depend on it.
    public func history(agent: String, series: String) throws(AggregatorError) -> [(timestamp: Int64, value: Double)] {
        guard let chunk = try history.points(agent: agent, series: series) else { return [] }
        return Array(zip(chunk.timestamps, chunk.values))
    }
}
