@testable import GemelloCore
import Testing

/// SHA-256 and HMAC against their published vectors; signed frames (wire-format §2.1); the
/// enrolment registry's file and its verdicts.
@Suite struct SignedBatchTests {
    @Test func sha256MatchesFIPSVectors() {
        #expect(SHA256.hash(Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)).hexString
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block).
    @Test func hmacMatchesRFC4231() {
        #expect(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)).hexString
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)).hexString
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131),
                               message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)).hexString
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!HMACSHA256.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    static let key = [UInt8](repeating: 7, count: 32)
    static let otherKey = [UInt8](repeating: 8, count: 32)

    static func batch() -> Batch {
        WireFormatTests.batch((0..<50).map { i in
            Reading(series: WireFormatTests.temperature, timestamp: 1_700_000_000_000 + Int64(i) * 1000, value: Double(i) / 10)
        })
    }

    @Test func signedFramesDecodeAndVerify() throws {
        let batch = Self.batch()
        let plain = try WireFormat.encode(batch)
        let signed = try WireFormat.encode(batch, signingKey: Self.key)
        #expect(signed.count == plain.count + WireFormat.tagLength)
        #expect(signed[3] & WireFormat.flagSigned != 0)
        WireFormatTests.expectBitExact(try WireFormat.decode(signed), batch)
        #expect(WireFormat.verify(signed, key: Self.key))
        #expect(!WireFormat.verify(signed, key: Self.otherKey))
        #expect(!WireFormat.verify(plain, key: Self.key))
        // Any altered byte, the tag's own included, fails the signature (the CRC does not cover the tag).
        for i in [0, 3, 8, signed.count / 2, signed.count - 1] {
            var altered = signed
            altered[i] ^= 0x20
            #expect(!WireFormat.verify(altered, key: Self.key), "byte \(i)")
        }
        // The tag is computed over the flags byte too: an unsigned copy cannot pass as signed.
        var stripped = Array(signed.dropLast(WireFormat.tagLength))
        stripped[3] &= ~WireFormat.flagSigned
        #expect(!WireFormat.verify(stripped, key: Self.key))
        // A frame flagged as signed with no room for a tag is refused, not trapped on.
        #expect(throws: CoreError.self) { try WireFormat.decode([0x47, 0x4D, 1, 2, 0, 0, 0, 0, 0]) }
    }

    /// The spec's example (wire-format.md §2.1), computed independently with Python's hmac.
    @Test func theSpecsSignedExample() throws {
        let minimal = try #require("474d010088ccfbd6290161010180d6e3f1aa56030101010b617270612d73656e61746f0101010100010101014a0000000000".hexBytes)
        let batch = try WireFormat.decode(minimal)
        let signed = try WireFormat.encode(batch, compressionLevel: 0, signingKey: Array(0..<32))
        #expect(signed.hexString == "474d010288ccfbd6290161010180d6e3f1aa56030101010b617270612d73656e61746f0101010100010101014a0000000000"
                + "44b09858dcc959c2bbbcccb577731728")
        #expect(WireFormat.verify(signed, key: Array(0..<32)))
    }

    @Test func registryRoundTripsAndJudges() throws {
        var registry = Enrolment()
        registry.upsert(.init(agentID: "tower-a", batchKey: Self.key, serial: "1001", enrolledAt: "2026-11-29T10:00:00Z"))
        registry.upsert(.init(agentID: "tower-b", batchKey: Self.otherKey, serial: nil, enrolledAt: "2026-11-29T10:00:00Z"))
        registry.upsert(.init(agentID: "tower-c", status: .revoked, batchKey: Self.key, serial: "1003",
                              enrolledAt: "2026-11-29T10:00:00Z", revokedAt: "2026-11-29T11:00:00Z"))
        let text = registry.format()
        #expect(try Enrolment.parse(text, file: "agents.txt") == registry)

        var a = Self.batch()
        a.agentID = "tower-a"
        let signedByA = try WireFormat.encode(a, signingKey: Self.key)
        #expect(registry.refusal(agent: "tower-a", payload: signedByA) == nil)
        // Agent A's batch relabelled as B (a broker that lets A publish on B's topic): B's key does not match.
        var asB = a
        asB.agentID = "tower-b"
        let forged = try WireFormat.encode(asB, signingKey: Self.key)
        #expect(registry.refusal(agent: "tower-b", payload: forged)?.contains("another identity") == true)
        #expect(registry.refusal(agent: "tower-a", payload: try WireFormat.encode(a))?.contains("not signed") == true)
        #expect(registry.refusal(agent: "tower-c", payload: signedByA)?.contains("revoked") == true)
        #expect(registry.refusal(agent: "tower-z", payload: signedByA)?.contains("gemello agent enroll tower-z") == true)

        for bad in ["tower-a active 00 - 2026", "tower-a paused \(Self.key.hexString) - 2026",
                    "tower-a revoked \(Self.key.hexString) - 2026", "Tower/A active \(Self.key.hexString) - 2026",
                    "tower-a active \(Self.key.hexString) - 2026\ntower-a active \(Self.key.hexString) - 2026"] {
            #expect(throws: CoreError.self, "\(bad)") { try Enrolment.parse(bad, file: "agents.txt") }
        }
    }
}
