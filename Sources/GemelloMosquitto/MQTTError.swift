import CMosquitto

/// The one error type of the libmosquitto wrapper; every `MOSQ_ERR_*` is converted in ``check(_:_:)``.
public struct MQTTError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// Not connected to a broker right now (retry after reconnecting).
        case notConnected
        /// The broker URL is malformed or uses an unsupported scheme.
        case invalidURL
        /// An argument was rejected (topic, payload size, QoS).
        case invalidArgument
        /// The connection was refused or lost.
        case connectionLost
        /// Out of memory inside libmosquitto.
        case outOfMemory
        /// A system call failed (socket, thread).
        case system
        /// Any other libmosquitto code.
        case library(Int32)
    }

    public let code: Code
    /// What was being attempted.
    public let operation: String
    public let detail: String?

    public init(_ code: Code, operation: String, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.detail = detail
    }

    public var description: String {
        "MQTT \(operation) failed: \(code)" + (detail.map { " (\($0))" } ?? "")
    }

    static func check(_ status: Int32, _ operation: String) throws(MQTTError) {
        guard status != MOSQ_ERR_SUCCESS.rawValue else { return }
        let detail = String(cString: mosquitto_strerror(status))
        switch status {
        case MOSQ_ERR_NO_CONN.rawValue: throw MQTTError(.notConnected, operation: operation, detail: detail)
        case MOSQ_ERR_INVAL.rawValue, MOSQ_ERR_PAYLOAD_SIZE.rawValue, MOSQ_ERR_MALFORMED_UTF8.rawValue,
             MOSQ_ERR_QOS_NOT_SUPPORTED.rawValue, MOSQ_ERR_OVERSIZE_PACKET.rawValue:
            throw MQTTError(.invalidArgument, operation: operation, detail: detail)
        case MOSQ_ERR_CONN_LOST.rawValue, MOSQ_ERR_CONN_REFUSED.rawValue, MOSQ_ERR_PROTOCOL.rawValue:
            throw MQTTError(.connectionLost, operation: operation, detail: detail)
        case MOSQ_ERR_NOMEM.rawValue: throw MQTTError(.outOfMemory, operation: operation, detail: detail)
        case MOSQ_ERR_ERRNO.rawValue: throw MQTTError(.system, operation: operation, detail: detail)
        default: throw MQTTError(.library(status), operation: operation, detail: detail)
        }
    }

    /// A readable reason for a CONNACK or disconnect code.
    static func reason(_ code: Int32) -> String {
        String(cString: mosquitto_connack_string(code))
    }
}
