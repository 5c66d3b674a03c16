import Foundation
import GemelloCore
import GemelloTesting
import Testing

@Suite struct SeriesChunkTests {
    static let source = SeriesChunk.Source(epoch: 7, sequence: 42, committedAt: 1_700_000_000_123)

    @Test(arguments: [
        [20.5, 20.5, 20.6, 20.4, 21.0],           // decimal, small deltas
        [1.0e300, -3.5e-7, .pi, 0, -0.0, 2.0],    // float XOR (and -0.0 kept)
        [5545, 4516, 4767, 5026, 4918],           // integers
    ])
    func roundTripsBitForBit(values: [Double]) throws {
        let chunk = SeriesChunk(timestamps: [1000, 2000, 2000, 3500, 9_000_000], values: values.prefix(5).map { $0 }, source: Self.source)
        let decoded = try SeriesChunk(decoding: try chunk.encoded())
        #expect(decoded.timestamps == chunk.timestamps)
        #expect(decoded.values.map(\.bitPattern) == chunk.values.map(\.bitPattern))
        #expect(decoded.sources == [Self.source])
        #expect(decoded.sourceIndex == chunk.sourceIndex)
    }

    /// Out-of-order batches merge into observation order; equal times keep arrival order, and every
    /// point keeps the batch that carried it.
    @Test func mergeOrdersByTimeAndKeepsLineage() throws {
        let late = SeriesChunk(timestamps: [1000, 3000], values: [1, 3], source: .init(epoch: 1, sequence: 1, committedAt: 50))
        let live = SeriesChunk(timestamps: [2000, 3000, 4000], values: [2, 3.5, 4], source: .init(epoch: 1, sequence: 9, committedAt: 10))
        let merged = SeriesChunk.merged([live, late])
        #expect(merged.timestamps == [1000, 2000, 3000, 3000, 4000])
        #expect(merged.values == [1, 2, 3.5, 3, 4])  // live arrived first: its 3000 comes first
        #expect(merged.source(of: 0).sequence == 1 && merged.source(of: 1).sequence == 9 && merged.source(of: 3).sequence == 1)
        let decoded = try SeriesChunk(decoding: try merged.encoded())
        #expect(decoded == merged)
        let parts = merged.split(size: 2)
        #expect(parts.map(\.count) == [2, 2, 1])
        #expect(parts[2].sources == [.init(epoch: 1, sequence: 9, committedAt: 10)])
        #expect(SeriesChunk.merged(parts) == merged)
    }

    /// Chunks written by this format's first release still decode, and encoding is deterministic
    /// (the same points make the same bytes): a codec change that breaks stored history fails here.
    @Test func storedChunksStillDecode() throws {
        let folder = Repository.root.appendingPathComponent("Tests/Fixtures/history-chunks")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".chunk") }
        #expect(files.count == 8)
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(file)))
            let chunk = try SeriesChunk(decoding: bytes)
            #expect(chunk.count == 453, "\(file)")
            #expect(chunk.sources == [.init(epoch: 0, sequence: 0, committedAt: 0)])
            #expect(try chunk.encoded() == bytes, "\(file)")
        }
    }

    @Test func refusesTimesThatGoBackwards() {
        let chunk = SeriesChunk(timestamps: [2000, 1000], values: [1, 2], source: Self.source)
        #expect(throws: CoreError.self) { try chunk.encoded() }
    }

    /// Every truncation and many bit flips of a real chunk are errors, never crashes or hangs.
    @Test func damagedChunksAreErrors() throws {
        var generator = SeededGenerator(seed: 12)
        let timestamps = (0..<1000).map { Int64($0) * 60_000 + Int64.random(in: 0...999, using: &generator) }
        let values = (0..<1000).map { _ in Double(Int.random(in: -500...500, using: &generator)) / 10 }
        let bytes = try SeriesChunk(timestamps: timestamps, values: values, source: Self.source).encoded()
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: CoreError.self) { try SeriesChunk(decoding: Array(bytes.prefix(length))) }
        }
        for _ in 0..<400 {
            var damaged = bytes
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] ^= UInt8(1 << Int.random(in: 0..<8, using: &generator))
            if let chunk = try? SeriesChunk(decoding: damaged) {  // a flip deep in the values may still decode
                #expect(chunk.count <= SeriesChunk.maxPoints)
                #expect(zip(chunk.timestamps, chunk.timestamps.dropFirst()).allSatisfy { $0 <= $1 })
            }
        }
    }
}
