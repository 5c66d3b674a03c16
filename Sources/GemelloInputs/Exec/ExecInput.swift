import GemelloCore

/// Runs a command every interval, with a timeout, and reads its output as readings: `name value
/// [unit]` lines, JSON, or Influx line protocol (so Telegraf-style scripts work unchanged). No
/// shell unless `shell: true`. A command that fails (not found, non-zero exit, timeout, output it
/// cannot parse) counts as a failed poll, reported in health with its reason, and runs again at
/// the next interval.
///
/// It can wait: while the buffer is full its polls are skipped (the command is not run), so
/// nothing it printed is dropped.
public struct ExecInput: PolledInput {
    public let configuration: Configuration
    public let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }
    public var schedule: PollSchedule { configuration.schedule }
    public var canWait: Bool { true }

    public init(configuration: Configuration, clock: any WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    public func makePoller() -> Poller {
        Poller(configuration: configuration,
               mapper: ReadingMapper(sensorID: configuration.sensor.id, units: configuration.units, nameTags: configuration.nameTags))
    }

    public struct Poller: InputPoller {
        let configuration: Configuration
        var mapper: ReadingMapper

        public mutating func poll(now: Int64) async throws -> [Reading] {
            let command = Command(argv: configuration.argv, timeout: configuration.timeout, maxOutput: configuration.maxOutput)
            let result = await Blocking.run { () -> Result<Command.Result, InputError> in
                do throws(InputError) { return .success(try command.run()) } catch { return .failure(error) }
            }
            let c = configuration
            let ran: Command.Result
            switch result {
            case .success(let r): ran = r
            case .failure(let error): throw InputError("exec '\(c.sensor.id)': \(error.message)")
            }
            if ran.timedOut {
                throw InputError("exec '\(c.sensor.id)': \(c.argv[0]) did not finish within \(c.timeout); stopped it (raise timeout, or make the command faster)")
            }
            guard ran.status == 0 else {
                let detail = String(decoding: ran.stderr, as: UTF8.self).split(separator: "\n").last.map { ": \($0)" } ?? ""
                throw InputError("exec '\(c.sensor.id)': \(c.argv[0]) exited with status \(ran.status)\(detail)")
            }
            do {
                return try mapper.map(ran.stdout, format: c.format, now: now, precision: c.precision).readings
            } catch {
                throw InputError("exec '\(c.sensor.id)': cannot read the output of \(c.argv[0]) as \(c.format.rawValue): \(error.message)")
            }
        }
    }
}
