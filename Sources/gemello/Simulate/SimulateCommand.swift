import ArgumentParser
import Foundation
import GemelloAgent
import GemelloCore
import GemelloMosquitto
import Synchronization
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// `gemello simulate --agents N`: a fleet of light virtual agents in one process, each a real MQTT
/// connection, for scale tests of the broker, the aggregator and the fleet view.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run N virtual agents (real MQTT connections: birth, health, data, death) in one process.",
        discussion: """
            Agents are named <prefix>-0001... and spread over sites around Milan (41 5G towers, the \
            rest fibre nodes). Ctrl-C (or --duration) stops them with a goodbye, so they show offline \
            at once. Readings come from the agent's simulated sensor profiles; for codec or ingest \
            figures use ops/bench, which replays the real datasets.
            """)

    @Option(name: .long, help: "How many virtual agents.")
    var agents = 10
    @Option(name: .long, help: "The broker (default: $GEMELLO_BROKER or mqtt://127.0.0.1:1883).")
    var broker: String?
    @Option(name: .long, help: "Stop after this many seconds (default: run until Ctrl-C).")
    var duration: Double?
    @Option(name: .long, help: "Agent ids are <prefix>-0001, <prefix>-0002, ...")
    var prefix = "sim"
    @Option(name: .long, help: "New connections per second while the fleet starts.")
    var ramp = 200.0
    @Option(name: .long, help: "Seconds between sensor samples per agent.")
    var sampleInterval = 1.0
    @Option(name: .long, help: "Seconds between data batches per agent.")
    var batchInterval = 5.0
    @Option(name: .long, help: "Seconds between health messages per agent.")
    var healthInterval = 10.0
    @Option(name: .long, help: "MQTT keepalive in seconds (the broker publishes the will after 1.5x this).")
    var keepalive: Int32 = 10
    @Option(name: .long, help: "Seconds between progress lines.")
    var progress = 5.0

    func validate() throws {
        guard (1...20_000).contains(agents) else { throw ValidationError("--agents must be 1...20000 (got \(agents))") }
        guard ramp > 0 else { throw ValidationError("--ramp must be positive (got \(ramp))") }
        guard sampleInterval >= 0.05, batchInterval >= 0.1, healthInterval >= 0.5 else {
            throw ValidationError("intervals too short: --sample-interval ≥ 0.05, --batch-interval ≥ 0.1, --health-interval ≥ 0.5 s")
        }
        guard (5...3600).contains(keepalive) else { throw ValidationError("--keepalive must be 5...3600 s (got \(keepalive))") }
        guard Topics.isValidAgentID(Self.agentID(prefix: prefix, index: agents)) else {
            throw ValidationError("--prefix '\(prefix)' does not make valid agent ids. Fix: lowercase letters, digits, '-', '_' or '.'")
        }
    }

    func run() async throws {
        let url = broker ?? Environment.value("GEMELLO_BROKER") ?? "mqtt://127.0.0.1:1883"
        guard let address = BrokerAddress(url: url) else {
            throw CLIError.usage("'\(url)' is not a broker URL. Fix: pass --broker mqtt://host:port or set GEMELLO_BROKER to one")
        }
        // libmosquitto holds three descriptors per client: its socket and a wake-up socket pair.
        try Self.raiseFileLimit(needed: agents * 3 + 64, agents: agents)
        let stats = SimulationStats()
        let network = MQTTPollLoop()
        let networkThread = Thread { network.run() }
        networkThread.name = "gemello-simulate-network"
        networkThread.start()
        defer { network.stop() }
        let epoch = UInt64(SystemWallClock().nowMilliseconds() / 1000)
        let settings = VirtualAgent.Settings(
            broker: address, sampleInterval: .milliseconds(Int64(sampleInterval * 1000)),
            batchInterval: .milliseconds(Int64(batchInterval * 1000)), healthInterval: .milliseconds(Int64(healthInterval * 1000)),
            keepAliveSeconds: keepalive, seed: 0)
        let fleet = (1...agents).map { index in
            var own = settings
            own.seed = UInt64(index) &* 2_654_435_761
            return VirtualAgent(id: Self.agentID(prefix: prefix, index: index), site: SimulatedSites.site(index), profile: SimulatedSites.profile(index),
                                epoch: epoch, settings: own, stats: stats, network: network)
        }
        print("simulate: starting \(agents) agents against \(address) at \(Int(ramp))/s; Ctrl-C stops them")
        let started = ContinuousClock.now
        let stop = SharedFlag()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        Task {
            for await _ in signals { break }
            stop.set()
        }
        if let duration {
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(duration * 1000)))
                stop.set()
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !stop.isSet {
                    try? await Task.sleep(for: .milliseconds(Int64(progress * 1000)))
                    if !stop.isSet { print(Self.line(stats, agents: agents, since: started)) }
                }
            }
            // Connect in steps of ten at --ramp per second, as a fleet booting over a while does.
            for (index, agent) in fleet.enumerated() where !stop.isSet {
                group.addTask { await agent.run() }
                if index % 10 == 9 { try? await Task.sleep(for: .milliseconds(Int64(10_000 / ramp))) }
            }
            while !stop.isSet { try? await Task.sleep(for: .milliseconds(100)) }
            group.cancelAll()
        }
        print(Self.line(stats, agents: agents, since: started))
        print("simulate: stopped \(agents) agents (goodbye sent)")
    }

    static func line(_ stats: SimulationStats, agents: Int, since: ContinuousClock.Instant) -> String {
        "simulate: \(Int((ContinuousClock.now - since).seconds)) s, \(stats.connected.load(ordering: .relaxed))/\(agents) connected, "
            + "batches \(stats.batchesSent.load(ordering: .relaxed)) sent / \(stats.batchesAcknowledged.load(ordering: .relaxed)) acknowledged, "
            + "readings \(stats.readingsSent.load(ordering: .relaxed)), health \(stats.healthSent.load(ordering: .relaxed)), "
            + "reconnects \(stats.reconnects.load(ordering: .relaxed))"
    }

    /// `sim-0007`: zero-padded to four digits so ids sort in order.
    static func agentID(prefix: String, index: Int) -> String {
        let digits = String(index)
        return prefix + "-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Every connection is a file descriptor: lift the soft limit toward the hard one; refuse to
    /// start (exit 1) when the hard limit is too low, before any agent connects.
    static func raiseFileLimit(needed: Int, agents: Int) throws(CLIError) {
        var limit = rlimit()
        #if os(Linux)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < rlim_t(needed) else { return }
        limit.rlim_cur = min(limit.rlim_max, rlim_t(needed))
        if setrlimit(resource, &limit) != 0 || limit.rlim_cur < rlim_t(needed) {
            _ = getrlimit(resource, &limit)
            let fits = max(0, (Int(limit.rlim_cur) - 64) / 3)
            throw CLIError("\(agents) virtual agents need \(needed) file descriptors (three per connection) and this process may open "
                           + "only \(limit.rlim_cur). Fix: raise the limit (ulimit -n \(needed); the hard limit is \(limit.rlim_max), "
                           + "raised by root or in /etc/security/limits.conf), or run --agents \(fits) or fewer")
        }
    }
}

/// A flag shared between tasks: the stop request (Ctrl-C or the end of --duration), an agent's
/// connection state.
final class SharedFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set(_ value: Bool = true) { flag.store(value, ordering: .relaxed) }
}
