import GemelloCore

extension CSVReplayInput {
    /// Options of a `csv-replay` input (see this folder's README.md for an example).
    public struct Configuration: InputOptions {
        public static let type = "csv-replay"
        public var sensor: SensorInfo
        /// The CSV file (relative paths resolve against the config file's folder).
        public var file: String
        /// Field separator: `,` or `;` (or any single character).
        public var separator: UInt8
        /// Decimal mark: `.` or `,` (Italian exports use `,`).
        public var decimalComma: Bool
        /// Columns joined with a space to form the timestamp text.
        public var timestampColumns: [String]
        public var timestampFormat: TimestampFormat
        /// Cell texts meaning "no value" (compared after trimming spaces).
        public var missingMarkers: Set<String>
        /// Data seconds replayed per wall-clock second, or `nil` for as fast as possible.
        public var speed: Double?
        /// CSV column → series attribute and unit, in file order.
        public var columns: [Column]

        public struct Column: Sendable {
            public var header: String
            public var attribute: String
            public var unit: String
        }

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            file = try section.path("file")
            guard FileText.exists(file) else {
                throw section.error("file", "the CSV file does not exist", value: file,
                                    fix: "give a path relative to the config file's folder, or an absolute one")
            }
            let separatorText = try section.string("separator", default: ",")
            guard separatorText.utf8.count == 1, let separatorByte = separatorText.utf8.first else {
                throw section.error("separator", "must be a single character", value: separatorText, fix: "write ',' or ';'")
            }
            separator = separatorByte
            let decimal = try section.string("decimal", default: ".")
            guard decimal == "." || decimal == "," else {
                throw section.error("decimal", "must be '.' or ','", value: decimal, fix: "write decimal: \",\" for Italian exports")
            }
            decimalComma = decimal == ","
            guard decimalComma == false || separator != UInt8(ascii: ",") else {
                throw section.error("decimal", "a decimal comma needs a separator other than ','", value: decimal,
                                    fix: "set separator: \";\"")
            }
            guard let timestamp = try section.section("timestamp") else {
                throw section.error("timestamp", "required section is missing",
                                    fix: "add 'timestamp:' with 'columns', 'format' and 'timezone'")
            }
            timestampColumns = try timestamp.stringList("columns")
            let formatText = try timestamp.string("format")
            guard let format = TimestampFormat(pattern: formatText, zone: try timestamp.string("timezone", default: "UTC")) else {
                throw timestamp.error("format", "not a usable timestamp format (or bad timezone)", value: formatText,
                                      fix: "use the tokens yyyy MM dd HH mm ss with literal separators, e.g. 'dd/MM/yyyy HH.mm.ss', and a timezone of UTC or ±HH:MM")
            }
            timestampFormat = format
            try timestamp.rejectUnknownKeys()
            missingMarkers = Set(try section.stringList("missing", default: [""]))
            let speedText = try section.string("speed", default: "max")
            if speedText == "max" {
                speed = nil
            } else if let value = Double(speedText.filter { $0 != "_" }), value > 0, value.isFinite {
                speed = value
            } else {
                throw section.error("speed", "not a replay speed", value: speedText,
                                    fix: "write a positive number of data seconds per second (3600 = an hour per second) or 'max'")
            }
            var columns: [Column] = []
            for (header, column) in try section.mappingEntries("columns") {
                let attribute = try column.attributeName()
                columns.append(Column(header: header, attribute: attribute, unit: try column.unitCode()))
                try column.rejectUnknownKeys()
            }
            guard !columns.isEmpty else {
                throw section.error("columns", "no columns mapped", fix: "map at least one CSV column to an attribute and unit")
            }
            self.columns = columns
            sensor = SensorInfo(id: sensorID, entityType: entityType,
                                attributes: columns.map { SensorInfo.Attribute(name: $0.attribute, unit: $0.unit) })
        }

        public func makeInput(_ context: InputContext) -> any Input { CSVReplayInput(configuration: self) }
    }
}
