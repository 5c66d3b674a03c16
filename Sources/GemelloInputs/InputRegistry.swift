import GemelloCore

/// An input type's options, decoded from one entry of the agent's `inputs:` list. Each input
/// folder defines one (`<Input>+Configuration.swift`) and lists it in ``InputRegistry/types``.
public protocol InputOptions: Sendable {
    /// The `type:` value that selects this input, e.g. `csv-replay`.
    static var type: String { get }
    /// The sensor (twin entity) the input feeds.
    var sensor: SensorInfo { get }
    /// Decodes and validates the entry (every problem names the key and the fix).
    init(_ section: ConfigSection) throws(CoreError)
    /// The input, ready to run.
    func makeInput(_ context: InputContext) -> any Input
}

/// What the agent lends its inputs: the clock, and the I/O that lives below the core (libmodbus,
/// wrapped in `GemelloModbus`, reached through ``ModbusConnector`` so that this module imports
/// only the core).
public struct InputContext: Sendable {
    public var clock: any WallClock
    /// Opens Modbus links; nil: the `modbus` input reports that it cannot run.
    public var modbus: (any ModbusConnector)?

    public init(clock: any WallClock, modbus: (any ModbusConnector)? = nil) {
        self.clock = clock
        self.modbus = modbus
    }
}

/// One configured input: its type's options, whatever the type.
public struct InputConfiguration: Sendable {
    public var options: any InputOptions

    public init(_ options: any InputOptions) { self.options = options }

    /// The `type:` it was configured with.
    public var type: String { Swift.type(of: options).type }
    /// The sensor this input feeds.
    public var sensor: SensorInfo { options.sensor }

    public func makeInput(_ context: InputContext) -> any Input { options.makeInput(context) }
    public func makeInput(clock: any WallClock) -> any Input { options.makeInput(InputContext(clock: clock)) }
}

/// Every input type the agent knows. A new input is a folder in this module and one line here.
public enum InputRegistry {
    public static let types: [any InputOptions.Type] = [
        SimulatedInput.Configuration.self,
        CSVReplayInput.Configuration.self,
        SystemInput.Configuration.self,
        ExecInput.Configuration.self,
        InfluxListenerInput.Configuration.self,
        ModbusInput.Configuration.self,
        MQTTSubscribeInput.Configuration.self,
    ]

    /// The names accepted by `type:`.
    public static var names: [String] { types.map { $0.type } }

    /// Decodes one `inputs:` entry by its `type`, rejecting keys the input does not know.
    public static func decode(_ section: ConfigSection) throws(CoreError) -> InputConfiguration {
        let name = try section.string("type")
        guard let type = types.first(where: { $0.type == name }) else {
            throw section.error("type", "unknown input type", value: name, fix: "use one of: \(names.joined(separator: ", "))")
        }
        let configuration = InputConfiguration(try type.init(section))
        try section.rejectUnknownKeys()
        return configuration
    }
}

extension ConfigSection {
    /// Validates a sensor id (it becomes part of series names and entity ids).
    public func sensorID(_ key: String = "sensor") throws(CoreError) -> String {
        let id = try string(key)
        guard Topics.isValidAgentID(id) else {
            throw error(key, "not a valid sensor id", value: id, fix: "use lowercase letters, digits, '-', '_' or '.'")
        }
        return id
    }

    /// A UN/CEFACT unit code from the known table.
    public func unitCode(_ key: String = "unit") throws(CoreError) -> String {
        let code = try string(key)
        guard UnitCode.isKnown(code) else {
            let known = UnitCode.known.keys.sorted().joined(separator: ", ")
            throw error(key, "not a known UN/CEFACT unit code", value: code, fix: "use one of: \(known)")
        }
        return code
    }

    /// An NGSI-LD attribute name.
    public func attributeName(_ key: String = "attribute") throws(CoreError) -> String {
        let attribute = try string(key)
        guard NGSIName.isValid(attribute) else {
            throw error(key, "not a valid NGSI-LD attribute name", value: attribute,
                        fix: "use up to 64 letters and digits starting with a letter, e.g. pm25 or relativeHumidity")
        }
        return attribute
    }
}

extension ConfigSection {
    /// A list of strings written as `[a, b]` or as `- a` lines, or a single value.
    public func stringList(_ key: String, default fallback: [String]? = nil) throws(CoreError) -> [String] {
        if let items = try optionalStringList(key) { return items }
        if let fallback { return fallback }
        throw error(key, "required key is missing", fix: "add '\(key): [...]'")
    }
}

/// NGSI-LD attribute names: a letter, then letters, digits or underscores; at most 64 of them
/// (well within the wire format's 256-byte names).
public enum NGSIName {
    public static func isValid(_ name: String) -> Bool {
        guard name.utf8.count <= 64, let first = name.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }
}
