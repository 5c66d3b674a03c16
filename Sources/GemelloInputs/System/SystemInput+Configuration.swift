import GemelloCore

extension SystemInput {
    /// The figure groups a `system` input can collect.
    public enum Group: String, CaseIterable, Sendable {
        case cpu, memory, load, uptime, disks, interfaces, temperatures, power
    }

    /// Options of a `system` input (this folder's README.md and sample.yaml).
    public struct Configuration: InputOptions {
        public static let type = "system"
        public var sensor: SensorInfo
        public var schedule: PollSchedule
        public var groups: Set<Group>
        /// Mount points whose free space is reported.
        public var disks: [String]
        /// Interfaces reported (`nil`: all but `lo`).
        public var interfaces: [String]?
        /// Where `/proc` and `/sys` are (a container mounts the host's elsewhere; tests use copies).
        public var procRoot: String
        public var sysRoot: String

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.optionalString("sensor") == nil ? "system" : try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            schedule = try PollSchedule(section, defaultInterval: .seconds(10))
            var groups = Set<Group>()
            for name in try section.stringList("collect", default: Group.allCases.map(\.rawValue)) {
                guard let group = Group(rawValue: name) else {
                    throw section.error("collect", "not a figure group", value: name,
                                        fix: "use some of: \(Group.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                groups.insert(group)
            }
            self.groups = groups
            disks = try section.stringList("disks", default: ["/"])
            for disk in disks where !disk.hasPrefix("/") {
                throw section.error("disks", "not an absolute mount point", value: disk, fix: "write mount points such as / or /var/lib/gemello")
            }
            let interfaces = try section.optionalStringList("interfaces")
            self.interfaces = interfaces
            procRoot = try section.string("proc-root", default: "/proc")
            sysRoot = try section.string("sys-root", default: "/sys")
            // The attributes every box has; per-disk, per-interface, per-sensor ones are found
            // at each poll (their names carry the instance: rxBytes_eth0, temperature_coretemp_Core_0).
            var attributes: [SensorInfo.Attribute] = []
            if groups.contains(.cpu) {
                attributes += ["cpuUsage", "cpuUser", "cpuSystem", "cpuIowait", "cpuSteal"].map { .init(name: $0, unit: "P1") }
            }
            if groups.contains(.memory) {
                attributes += [.init(name: "memoryTotal", unit: "AD"), .init(name: "memoryAvailable", unit: "AD"),
                               .init(name: "memoryUsed", unit: "AD"), .init(name: "memoryUsage", unit: "P1"), .init(name: "swapUsed", unit: "AD")]
            }
            if groups.contains(.load) { attributes += ["load1", "load5", "load15"].map { .init(name: $0, unit: "C62") } }
            if groups.contains(.uptime) { attributes.append(.init(name: "uptime", unit: "SEC")) }
            sensor = SensorInfo(id: sensorID, entityType: entityType, attributes: attributes)
        }

        public func makeInput(_ context: InputContext) -> any Input { SystemInput(configuration: self, clock: context.clock) }
    }
}
