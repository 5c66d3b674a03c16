/// The one error type of the agent library.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// The configuration is invalid (the wrapped ``GemelloCore/CoreError`` names file and key).
        case configuration
        /// The buffer database could not be opened, written or read.
        case buffer
        /// An input could not read its source.
        case input
        /// The MQTT client could not be set up.
        case publisher
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
