import GemelloCore
import GemelloMosquitto
import GemelloStorage
import Logging
import Synchronization

/// Decodes batches, stores them (the batches that arrived together in one transaction: group
/// commit), then acknowledges them, duplicates included (the agent resent because it missed our
/// first ack). A batch that fails to decode is counted against its agent and logged.
final class BatchIngestor: Sendable {
    /// Batches in one transaction at most.
    static let maxGroup = 64

    private let store: TwinStore
    private let counters: IngestCounters
    private let metrics: AggregatorMetrics?
    private let projection: TwinProjection?
    /// Judges the rules inside each ingest transaction (nil: no alerts).
    private let alerts: AlertEngine?
    /// Refuses batches of agents not enrolled, revoked, or not signed with their key (nil: open).
    private let enrolment: EnrolmentGate?
    private let clock: any WallClock
    private let logger: Logger
    /// Wire v2: the series each agent defined in its current boot epochs (in memory: after a
    /// restart the first reference gets a resync and the agent defines its series again).
    private let seriesTables = Mutex(SeriesTables())

    init(store: TwinStore, counters: IngestCounters, metrics: AggregatorMetrics?, projection: TwinProjection?,
         alerts: AlertEngine? = nil, enrolment: EnrolmentGate? = nil, clock: any WallClock, logger: Logger) {
        self.alerts = alerts
        self.enrolment = enrolment
        self.store = store
        self.counters = counters
        self.metrics = metrics
        self.projection = projection
        self.clock = clock
        self.logger = logger
    }

    /// Decode, store (one transaction), then acknowledge.
    func ingest(_ messages: [(agent: String, payload: [UInt8])], client: MQTTClient) {
        let now = clock.nowMilliseconds()
        let started = ContinuousClock.now
        var batches: [Batch] = []
        for (agent, payload) in messages {
            if let enrolment, let refusal = enrolment.refusal(agent: agent, payload: payload) {
                // Not acknowledged: a genuine agent keeps the batch until it is enrolled again.
                counters.rejected.add(1, ordering: .relaxed)
                counters.refused.add(1, ordering: .relaxed)
                metrics?.rejected.increment()
                metrics?.refused.increment()
                logger.warning("refused a batch", metadata: ["agent": "\(agent)", "bytes": "\(payload.count)", "reason": "\(refusal)"])
                // Counted against an enrolled agent in the fleet view; topics of agents nobody
                // enrolled get no fleet row (they would let anyone who reaches the broker add rows).
                if enrolment.registry[agent] != nil { try? store.recordRejected(agent: agent, now: now) }
                continue
            }
            do {
                let batch = try decode(payload, agent: agent)
                guard batch.agentID == agent else {
                    throw CoreError(.malformed, "batch names agent '\(batch.agentID)' but arrived on the topic of '\(agent)'")
                }
                batches.append(batch)
            } catch let resync as Resync {
                // Not acknowledged: the agent defines its series again and resends (docs/protocol.md).
                ask(agent: agent, toResync: resync, client: client)
            } catch {
                counters.rejected.add(1, ordering: .relaxed)
                metrics?.rejected.increment()
                logger.warning("rejected a batch", metadata: ["agent": "\(agent)", "bytes": "\(payload.count)", "error": "\(error)"])
                try? store.recordRejected(agent: agent, now: now)
            }
        }
        guard !batches.isEmpty else { return }
        let prepared = Prepared()
        let outcomes: [TwinStore.IngestOutcome]
        do {
            outcomes = try store(batches, now: now, prepared: prepared)
        } catch {
            guard batches.count == 1 else {
                // One bad batch must not hold back the others: store them one by one.
                logger.warning("a group of batches could not be stored together; storing them one by one",
                               metadata: ["batches": "\(batches.count)", "error": "\(error)"])
                for batch in batches { ingestDecoded([batch], receivedAt: now, client: client) }
                return
            }
            // Not acknowledged: the agent keeps the batch and resends it after its ack timeout.
            failedToStore(batches[0], error)
            return
        }
        finish(batches, outcomes, prepared: prepared, now: now, started: started, client: client)
    }

    /// Decodes a v1 or v2 frame; a v2 frame's references resolve against the agent's session
    /// series, and its definitions are remembered (the enrolment gate already trusted it).
    private func decode(_ payload: [UInt8], agent: String) throws -> Batch {
        // This agent's sessions only (a copy of the whole table would be copied again, all
        // agents of it, by the first definition stored while it lives).
        let sessions = seriesTables.withLock { $0.sessions(of: agent) }
        let result = Result { () throws(CoreError) -> WireFormat.Decoded in
            try WireFormat.decodeFrame(payload, agentID: agent) { bootEpoch, index in sessions[bootEpoch]?[index] }
        }
        let decoded: WireFormat.Decoded
        switch result {
        case .success(let value): decoded = value
        case .failure(let error):
            if error.code == .unknownSeries { throw Resync(epoch: error.bootEpoch ?? 0, error: error) }
            throw error
        }
        if !decoded.definitions.isEmpty {
            try seriesTables.withLock { (tables: inout SeriesTables) throws(CoreError) in
                try tables.define(agent: agent, epoch: decoded.batch.bootEpoch, decoded.definitions)
            }
        }
        return decoded.batch
    }

    /// A v2 batch referred to series of `epoch` this aggregator does not hold.
    private struct Resync: Error {
        var epoch: UInt64
        var error: CoreError
    }

    /// Asks `agent` to define its series of the batch's epoch again.
    private func ask(agent: String, toResync resync: Resync, client: MQTTClient) {
        let (epoch, error) = (resync.epoch, resync.error)
        counters.resyncs.add(1, ordering: .relaxed)
        logger.info("a batch refers to series this aggregator does not hold; asking the agent to define them again",
                    metadata: ["agent": "\(agent)", "epoch": "\(epoch)", "error": "\(error)"])
        do { try client.publish(topic: Topics.ack(agent: agent), payload: WireResync(bootEpoch: epoch).encode()) } catch {
            logger.warning("could not send a resync; the agent resends after its ack timeout", metadata: ["agent": "\(agent)", "error": "\(error)"])
        }
    }

    /// The same for batches already decoded (the one-by-one retry).
    private func ingestDecoded(_ batches: [Batch], receivedAt now: Int64, client: MQTTClient) {
        let started = ContinuousClock.now
        let prepared = Prepared()
        do {
            let outcomes = try store(batches, now: now, prepared: prepared)
            finish(batches, outcomes, prepared: prepared, now: now, started: started, client: client)
        } catch {
            failedToStore(batches[0], error)
        }
    }

    /// A batch the store did not take: not acknowledged (its agent resends it), counted, logged.
    private func failedToStore(_ batch: Batch, _ error: any Error) {
        counters.storeFailures.add(1, ordering: .relaxed)
        metrics?.storeFailures.increment()
        logger.error("could not store a batch; it will be resent",
                     metadata: ["agent": "\(batch.agentID)", "sequence": "\(batch.sequence)", "error": "\(error)"])
    }

    /// One transaction for `batches`, holding the alert engine when there is one (it judges the
    /// stored readings in the same transaction).
    private func store(_ batches: [Batch], now: Int64, prepared: Prepared) throws -> [TwinStore.IngestOutcome] {
        guard let alerts else { return try store.ingest(batches, receivedAt: now, alongside: prepare(batches, into: prepared, pass: nil)) }
        return try alerts.ingesting { pass in
            try store.ingest(batches, receivedAt: now, alongside: prepare(batches, into: prepared, pass: pass))
        }
    }

    /// Inside the transaction, after the batches: the projection reads each agent's entities as
    /// the group leaves them and queues the notifications they cause (once per agent: the
    /// batches of one commit are one change), and the rules judge the stored readings, so the
    /// notifications, alerts and alert messages commit with the batches.
    private func prepare(_ batches: [Batch], into prepared: Prepared, pass: AlertEngine.Pass?) -> (([Int], any StoreConnection) throws -> Void)? {
        guard projection != nil || pass != nil else { return nil }
        let now = clock.nowMilliseconds()
        return { [projection] stored, db in
            if let projection {
                var agents: [String] = []
                for i in stored where !agents.contains(batches[i].agentID) { agents.append(batches[i].agentID) }
                for agent in agents { prepared.items.append(try projection.prepare(agent: agent, in: db)) }
            }
            try pass?.evaluate(stored.map { batches[$0] }, now: now, db: db)
        }
    }

    /// What the projection prepared in one ingest's transaction (filled inside it, used after it
    /// on the same thread).
    private final class Prepared {
        var items: [TwinProjection.Prepared] = []
    }

    /// After the commit: count, acknowledge (one message per agent and epoch), show in the twin.
    private func finish(_ batches: [Batch], _ outcomes: [TwinStore.IngestOutcome], prepared: Prepared,
                        now: Int64, started: ContinuousClock.Instant, client: MQTTClient) {
        var acks: [(agent: String, epoch: UInt64, sequences: [UInt64])] = []
        if outcomes.contains(where: { if case .stored = $0 { true } else { false } }) { counters.commits.add(1, ordering: .relaxed) }
        for (batch, outcome) in zip(batches, outcomes) {
            switch outcome {
            case .stored(let readings):
                counters.batches.add(1, ordering: .relaxed)
                counters.readings.add(Int64(readings), ordering: .relaxed)
                metrics?.batches.increment()
                metrics?.readings.increment(by: readings)
                metrics?.batchLatency.recordMilliseconds(max(0, now - batch.createdAt))
                metrics?.recordReadingDelays(batch, now: now)
            case .duplicate:
                counters.duplicates.add(1, ordering: .relaxed)
                metrics?.duplicates.increment()
                logger.debug("duplicate batch", metadata: ["agent": "\(batch.agentID)", "sequence": "\(batch.sequence)"])
            }
            if let i = acks.firstIndex(where: { $0.agent == batch.agentID && $0.epoch == batch.bootEpoch }) {
                acks[i].sequences.append(batch.sequence)
            } else {
                acks.append((batch.agentID, batch.bootEpoch, [batch.sequence]))
            }
        }
        for ack in acks {
            let message = BatchAck(bootEpoch: ack.epoch, sequences: ack.sequences, features: .current)
            do { try client.publish(topic: Topics.ack(agent: ack.agent), payload: message.encode()) } catch {
                logger.warning("could not send an ack; the agent will resend", metadata: ["agent": "\(ack.agent)", "error": "\(error)"])
            }
        }
        metrics?.storeDuration.recordSeconds((ContinuousClock.now - started).seconds)
        for p in prepared.items { projection?.commit(p) }
    }
}
