/// The v1 tables of well-known attribute names and unit codes (docs/wire-format.md, "Dictionary").
///
/// A series whose attribute or unit is in a table is sent as its 1-based position (one byte)
/// instead of the string. The tables are part of wire format v1: **never reorder or remove an
/// entry**; a new entry changes what v1 decoders understand, so it needs a new format version.
enum WireNames {
    /// FIWARE Smart Data Models attribute names (Environment, Weather, Transportation, Energy,
    /// Device), in this order.
    static let attributes: [String] = [
        "temperature", "relativeHumidity", "absoluteHumidity", "atmosphericPressure", "dewPoint",
        "windSpeed", "windDirection", "precipitation", "snowHeight", "illuminance",
        "solarRadiation", "uVIndexMax", "cloudiness", "visibility",
        "pm1", "pm10", "pm25", "no", "no2", "nox", "o3", "co", "co2", "so2", "nh3", "h2s",
        "c6h6", "nmhc", "voc", "airQualityIndex", "noiseLevel",
        "intensity", "occupancy", "averageVehicleSpeed", "averageVehicleLength", "averageHeadwayTime",
        "height", "flow", "velocity", "waterLevel", "conductivity", "turbidity", "pH",
        "batteryLevel", "batteryMaxLevel", "voltage", "current", "powerConsumption", "activePower",
        "energyConsumed", "energyGenerated",
        "throughput", "latency", "packetLoss", "signalStrength", "rssi",
    ]

    /// UN/CEFACT common codes, in this order.
    static let units: [String] = [
        "CEL", "KEL", "FAH", "GQ", "GP", "A93", "59", "61", "MTS", "KMH", "MMT", "CMT", "MTR",
        "P1", "A97", "PAL", "2N", "LUX", "VLT", "AMP", "WTT", "KWT", "WHR", "KWH", "C62", "E50",
        "MQH", "DD", "MBP", "MIN", "SEC", "C26",
    ]

    static let attributeIndex: [String: Int] = Dictionary(uniqueKeysWithValues: attributes.enumerated().map { ($1, $0 + 1) })
    static let unitIndex: [String: Int] = Dictionary(uniqueKeysWithValues: units.enumerated().map { ($1, $0 + 1) })
}
