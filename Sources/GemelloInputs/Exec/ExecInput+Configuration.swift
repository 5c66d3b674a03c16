import GemelloCore

extension ExecInput {
    /// Options of an `exec` input (this folder's README.md and sample.yaml).
    public struct Configuration: InputOptions {
        public static let type = "exec"
        public var sensor: SensorInfo
        public var schedule: PollSchedule
        /// The program and its arguments (with `shell: true`: `/bin/sh -c <command>`).
        public var argv: [String]
        public var timeout: Duration
        public var format: ReadingFormat
        public var precision: InfluxLineProtocol.Precision
        public var units: [String: String]
        public var nameTags: [String]
        public var maxOutput: Int

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            schedule = try PollSchedule(section, defaultInterval: .seconds(60))
            let shell = try section.bool("shell", default: false)
            if shell {
                argv = ["/bin/sh", "-c", try section.string("command")]
            } else {
                argv = try section.stringList("command")
                guard let program = argv.first, !program.isEmpty else {
                    throw section.error("command", "no program given", fix: "write command: [/usr/local/bin/read-sensor, --json]")
                }
                if Command.locate(program) == nil {
                    throw section.error("command", "the program is not found or not executable", value: program,
                                        fix: "give its full path, or a name on the agent's PATH; for a shell line set shell: true")
                }
            }
            timeout = try section.duration("timeout", default: .seconds(10), range: .milliseconds(10)...(.seconds(3600)))
            guard timeout <= schedule.interval else {
                throw section.error("timeout", "longer than the interval", value: "\(timeout)", fix: "keep timeout at or below interval (\(schedule.interval))")
            }
            format = try section.choice("format", default: ReadingFormat.lines)
            precision = try section.precision()
            units = try section.unitMap()
            nameTags = try section.stringList("name-tags", default: [])
            maxOutput = Int(try section.byteSize("max-output", default: 1 << 20, range: 1024...(64 << 20)))
            sensor = SensorInfo(id: sensorID, entityType: entityType,
                                attributes: units.sorted { $0.key < $1.key }.map { .init(name: $0.key, unit: $0.value) })
        }

        public func makeInput(_ context: InputContext) -> any Input { ExecInput(configuration: self, clock: context.clock) }
    }
}
