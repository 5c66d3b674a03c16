/// The one error type of the aggregator library.
public struct AggregatorError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        case configuration
        /// The twin store could not be opened, written or read.
        case store
        /// The MQTT client could not be set up.
        case broker
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
