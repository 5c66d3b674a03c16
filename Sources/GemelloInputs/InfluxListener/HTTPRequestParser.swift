/// One HTTP/1.1 request, as the `influx-listener` needs it.
struct HTTPRequest: Sendable, Equatable {
    var method: String
    /// The path without the query string.
    var path: String
    /// Query parameters, percent-decoded.
    var query: [String: String]
    /// Header names lowercased; a repeated header keeps its last value.
    var headers: [String: String]
    var body: [UInt8]

    /// Whether the client wants the connection kept after this request.
    var keepAlive: Bool { headers["connection"]?.lowercased() != "close" }
}

/// An incremental HTTP/1.1 request parser (RFC 9112): request line, headers, and a body by
/// `Content-Length` or `chunked` transfer coding, with limits on every part. Pure: bytes in,
/// requests or a refusal out (tested without sockets).
struct HTTPRequestParser: Sendable {
    enum Outcome: Equatable {
        /// Not a whole request yet; `expectsContinue` when the head asked for `100 Continue`.
        case needMore(expectsContinue: Bool)
        case request(HTTPRequest)
        /// Refuse with this status and close the connection.
        case refuse(status: Int, reason: String)
    }

    var maxHead = 32 * 1024
    var maxBody: Int
    private var buffer: [UInt8] = []
    private var head: HTTPRequest?
    private var bodyLength: Int?   // nil: chunked
    private var chunked = ChunkState.size
    private var body: [UInt8] = []
    private var continueAnnounced = false

    private enum ChunkState: Equatable { case size, data(Int), dataEnd, trailer }

    init(maxBody: Int) { self.maxBody = maxBody }

    /// Adds bytes read from the connection and returns what can be said now. After `.request`,
    /// call again with no bytes: a pipelined request may already be buffered.
    mutating func feed(_ bytes: some Collection<UInt8>) -> Outcome {
        buffer.append(contentsOf: bytes)
        if head == nil {
            guard let end = headEnd() else {
                return buffer.count > maxHead ? .refuse(status: 431, reason: "request head larger than \(maxHead) bytes")
                                               : .needMore(expectsContinue: false)
            }
            let text = String(decoding: buffer[0..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            switch parseHead(text) {
            case .failure(let refusal): return refusal.outcome
            case .success(let request): head = request
            }
            body = []
            chunked = .size
            continueAnnounced = false
            if let length = bodyLength, length > maxBody { return .refuse(status: 413, reason: "body of \(length) bytes is over the \(maxBody)-byte limit") }
        }
        let expects = head?.headers["expect"]?.lowercased() == "100-continue"
        if let length = bodyLength {
            guard buffer.count >= length else {
                defer { continueAnnounced = true }
                return .needMore(expectsContinue: expects && !continueAnnounced)
            }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else {
            switch readChunks() {
            case .some(let refusal): return refusal
            case .none:
                if chunked != .trailer || !trailerDone() {
                    defer { continueAnnounced = true }
                    return .needMore(expectsContinue: expects && !continueAnnounced)
                }
            }
        }
        var request = head!
        request.body = body
        head = nil
        body = []
        return .request(request)
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private mutating func parseHead(_ text: String) -> Result<HTTPRequest, RefusalBox> {
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let parts = lines[0].split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return .failure(RefusalBox(.refuse(status: 400, reason: "not an HTTP/1.x request line")))
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return .failure(RefusalBox(.refuse(status: 400, reason: "malformed header line"))) }
            let name = line[..<colon].lowercased()
            guard !name.isEmpty, !name.contains(" ") else { return .failure(RefusalBox(.refuse(status: 400, reason: "malformed header name"))) }
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        let target = parts[1]
        let path = String(target.prefix { $0 != "?" })
        var query: [String: String] = [:]
        if let mark = target.firstIndex(of: "?") {
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[Self.percentDecode(kv[0])] = kv.count > 1 ? Self.percentDecode(kv[1]) : ""
            }
        }
        if let coding = headers["transfer-encoding"] {
            guard coding.lowercased() == "chunked" else {
                return .failure(RefusalBox(.refuse(status: 501, reason: "transfer coding '\(coding)' not supported")))
            }
            bodyLength = nil
        } else if let length = headers["content-length"] {
            guard let n = Int(length), n >= 0 else { return .failure(RefusalBox(.refuse(status: 400, reason: "bad Content-Length"))) }
            bodyLength = n
        } else {
            bodyLength = 0
        }
        return .success(HTTPRequest(method: String(parts[0]), path: path, query: query, headers: headers, body: []))
    }

    struct RefusalBox: Error { let outcome: Outcome; init(_ outcome: Outcome) { self.outcome = outcome } }

    /// Consumes chunks from the buffer; a refusal, or nil to go on.
    private mutating func readChunks() -> Outcome? {
        while true {
            switch chunked {
            case .size:
                guard let lineEnd = crlf() else {
                    return buffer.count > 1024 ? .refuse(status: 400, reason: "bad chunk size line") : nil
                }
                let line = String(decoding: buffer[0..<lineEnd], as: UTF8.self)
                buffer.removeFirst(lineEnd + 2)
                guard let size = Int(line.prefix { $0 != ";" }.trimmingCharacters(in: " "), radix: 16), size >= 0 else {
                    return .refuse(status: 400, reason: "bad chunk size '\(line.prefix(20))'")
                }
                guard body.count + size <= maxBody else { return .refuse(status: 413, reason: "body over the \(maxBody)-byte limit") }
                chunked = size == 0 ? .trailer : .data(size)
            case .data(let size):
                guard buffer.count >= size else { return nil }
                body.append(contentsOf: buffer[0..<size])
                buffer.removeFirst(size)
                chunked = .dataEnd
            case .dataEnd:
                guard buffer.count >= 2 else { return nil }
                guard buffer[0] == 13 && buffer[1] == 10 else { return .refuse(status: 400, reason: "chunk not followed by CRLF") }
                buffer.removeFirst(2)
                chunked = .size
            case .trailer:
                return nil
            }
        }
    }

    /// Skips trailer fields up to the empty line; true once it was found.
    private mutating func trailerDone() -> Bool {
        while let end = crlf() {
            buffer.removeFirst(end + 2)
            if end == 0 { return true }
        }
        return false
    }

    private func crlf() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for i in 0..<(buffer.count - 1) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
        return nil
    }

    static func percentDecode(_ text: Substring) -> String {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "+") { out.append(0x20); continue }
            if b == UInt8(ascii: "%"), bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
