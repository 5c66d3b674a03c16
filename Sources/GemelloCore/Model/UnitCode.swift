/// UN/CEFACT common codes used by NGSI-LD's `unitCode`, with the symbol people read.
///
/// Configs name units by code so the twin can pass them to NGSI-LD consumers unchanged.
public enum UnitCode {
    public static let known: [String: String] = [
        "CEL": "°C", "KEL": "K", "FAH": "°F",
        "GQ": "µg/m³", "GP": "mg/m³", "A93": "g/m³", "59": "ppm", "61": "ppb",
        "MTS": "m/s", "KMH": "km/h", "MMT": "mm", "CMT": "cm", "MTR": "m",
        "P1": "%", "A97": "hPa", "PAL": "Pa", "2N": "dB", "LUX": "lx",
        "VLT": "V", "AMP": "A", "WTT": "W", "KWT": "kW", "WHR": "Wh", "KWH": "kWh",
        "C62": "1", "AD": "B", "E50": "vehicles/h", "MQH": "m³/h", "DD": "°", "MBP": "Mbit/s", "MIN": "min", "SEC": "s", "C26": "ms",
    ]

    /// The readable symbol for `code`, or the code itself when unknown.
    public static func symbol(_ code: String) -> String { known[code] ?? code }

    public static func isKnown(_ code: String) -> Bool { known[code] != nil }
}
