import GemelloCore
import Logging
import ServiceLifecycle

/// The shared wrapper every input runs in: logging, graceful stop, and a summary when it ends.
/// An input that ends (a replay reaching its last row) or fails does not stop the agent.
public struct InputService: Service {
    let input: any Input
    let sink: BufferWriter
    let logger: Logger

    public init(input: any Input, sink: BufferWriter, logger: Logger) {
        self.input = input
        self.sink = sink
        var logger = logger
        logger[metadataKey: "sensor"] = "\(input.sensor.id)"
        self.logger = logger
    }

    public func run() async {
        logger.info("input started")
        do {
            var resume: Int64?
            if let key = input.checkpointKey, let position = try sink.checkpoint(for: key) {
                resume = position
                logger.info("input resuming where the buffer ends", metadata: ["position": "\(position)"])
            }
            let start = resume
            let summary = try await cancelWhenGracefulShutdown { try await input.run(into: sink, resumingFrom: start) }
            var metadata: Logger.Metadata = [:]
            for (name, value) in summary.counters { metadata[name] = "\(value)" }
            logger.info("input finished", metadata: metadata)
        } catch {
            logger.error("input failed", metadata: ["error": "\(error)"])
        }
    }
}
