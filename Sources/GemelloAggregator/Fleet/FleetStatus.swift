import GemelloCore

/// Decides an agent's status from what the aggregator knows. Pure, so it is tested without I/O.
///
/// `offline` comes first of all from the agent's **death**: its clean goodbye, or the Last Will
/// the broker publishes when the connection breaks. A death only ends the session it names, so a
/// late will never hides a newer session (Sparkplug's bdSeq rule).
///
/// Silence is the second signal, needed because the broker is slow to notice a cut link:
/// mosquitto 2.0 checks keepalives only every ~5 s, so its will can come seconds after the
/// MQTT-spec 1.5× keepalive (measured: 9.5 s for a 5 s keepalive). An agent that announced its
/// keepalive and sends health at least that often is `offline` once silent for 1.5× its
/// keepalive, as the spec would have the broker decide; `stale` (connected, but silent past its
/// expected interval) after `staleIntervals` missed health messages. Agents that announced no
/// intervals use `staleAfter` / `offlineAfter` (ThingsBoard's inactivity timeout, never the first signal).
public struct FleetStatusPolicy: Sendable, Equatable {
    /// Silent longer than this: `stale`, for agents that do not announce their health interval.
    public var staleAfter: Duration
    /// Agents that announce their health interval are `stale` after this many intervals of silence.
    public var staleIntervals: Int
    /// Silent longer than this (and twice the stale threshold): `offline` for agents whose
    /// keepalive rule does not apply (a lost death message).
    public var offlineAfter: Duration

    public init(staleAfter: Duration = .seconds(30), staleIntervals: Int = 3, offlineAfter: Duration = .seconds(120)) {
        self.staleAfter = staleAfter
        self.staleIntervals = staleIntervals
        self.offlineAfter = offlineAfter
    }

    /// The silence after which an agent with this health interval is `stale`.
    /// Never under ``minimumStale``: one late heartbeat on a busy path must not flap the status.
    public func staleThreshold(healthInterval: Duration?) -> Duration {
        guard let healthInterval, healthInterval > .zero else { return staleAfter }
        return max(healthInterval * staleIntervals, Self.minimumStale)
    }

    public static let minimumStale = Duration.seconds(5)

    /// The silence after which the agent is `offline` without a death message.
    public func offlineThreshold(healthInterval: Duration?, keepAlive: Duration?) -> Duration {
        if let keepAlive, let healthInterval, keepAlive > .zero, healthInterval > .zero, healthInterval <= keepAlive {
            return keepAlive * 1.5
        }
        // A slow heartbeat gets a stale phase of its own before the offline fallback.
        return max(offlineAfter, staleThreshold(healthInterval: healthInterval) * 2)
    }

    /// - Parameters:
    ///   - bootEpoch: epoch of the latest birth; `deathEpoch`: epoch of the latest death.
    ///   - lastSeen / now / listeningSince: Unix milliseconds. `listeningSince` is when the
    ///     aggregator last started hearing agents: silence before it is ours, not the agent's, so
    ///     a restarted aggregator does not call its whole fleet stale.
    ///   - ingestLag: milliseconds our own ingest runs behind: messages the broker holds for us
    ///     that we have not read yet are not the agent's silence either.
    ///   - healthInterval, keepAlive: what the agent's birth announced, if anything.
    public func status(bootEpoch: UInt64, deathEpoch: UInt64, lastSeen: Int64?, now: Int64,
                       healthInterval: Duration? = nil, keepAlive: Duration? = nil,
                       listeningSince: Int64 = 0, ingestLag: Int64 = 0) -> FleetAgentSummary.Status {
        guard bootEpoch > deathEpoch, let lastSeen else { return .offline }
        let silence = Duration.milliseconds(Hearing(since: listeningSince, lag: ingestLag).silence(since: lastSeen, now: now))
        if silence > offlineThreshold(healthInterval: healthInterval, keepAlive: keepAlive) { return .offline }
        if silence > staleThreshold(healthInterval: healthInterval) { return .stale }
        return .online
    }

    public func status(bootEpoch: UInt64, deathEpoch: UInt64, lastSeen: Int64?, now: Int64,
                       healthInterval: Duration?, keepAlive: Duration?, hearing: Hearing) -> FleetAgentSummary.Status {
        status(bootEpoch: bootEpoch, deathEpoch: deathEpoch, lastSeen: lastSeen, now: now, healthInterval: healthInterval,
               keepAlive: keepAlive, listeningSince: hearing.since, ingestLag: hearing.lag)
    }
}

/// How well the aggregator itself hears agents right now, so that its own deafness is never
/// taken for their silence (the wrong-offline reports ThingsBoard users file come from this).
public struct Hearing: Sendable, Equatable {
    /// Since when (Unix ms) we hear agents; silence before it is ours.
    public var since: Int64
    /// How far (ms) our ingest runs behind the broker.
    public var lag: Int64

    public init(since: Int64, lag: Int64 = 0) {
        self.since = since
        self.lag = lag
    }

    /// Always heard, never behind (stores used without an ingest service, tests).
    public static let perfect = Hearing(since: 0)

    /// Silence counted from `since`, `lag` taken off, at `now`.
    public func silence(since lastSeen: Int64, now: Int64) -> Int64 { max(0, now - lag - max(lastSeen, since)) }
}
