import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// GETs JSON from the aggregator, turning transport and HTTP failures into messages that say
/// what to do.
struct APIClient {
    let baseURL: String
    /// Sent as `Authorization: Bearer` (the aggregator's `http.tokens-file`).
    var token: String? = nil

    func getData(_ path: String) async throws -> Data { try await getResponse(path).data }

    /// The body and the response headers (temporal replies page with `Content-Range`).
    func getResponse(_ path: String, method: String = "GET", body: Data? = nil) async throws -> (data: Data, headers: [String: String]) {
        let trimmed = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        guard let url = URL(string: trimmed + path), Self.isHTTPURL(baseURL) else {
            throw CLIError.usage("'\(baseURL)' is not an http:// URL. Fix: pass --aggregator http://host:port or set GEMELLO_AGGREGATOR to one")
        }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if path.hasPrefix("/ngsi-ld/") {
            // The twin's telemetry speaks Smart Data Models terms: name that context so names come back short.
            request.setValue("<\(Self.smartDataModelsContext)>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
                             forHTTPHeaderField: "Link")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("cannot reach the aggregator at \(trimmed) (\(error.localizedDescription)). "
                           + "Fix: start gemello-aggregator, or pass --aggregator URL / set GEMELLO_AGGREGATOR")
        }
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            var detail = ""
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let text = object["detail"] as? String {
                detail = ": \(text)"
            }
            if http.statusCode == 404 { throw CLIError.notFound("\(path): not found\(detail)") }
            if http.statusCode == 401 {
                throw CLIError("the aggregator wants a valid API token for \(path)\(detail). Fix: set $GEMELLO_TOKEN or pass --token-file (an operator makes one with 'gemello token create')")
            }
            if http.statusCode == 403 { throw CLIError("the API token may not do this\(detail). Fix: use a token with that scope") }
            throw CLIError("the aggregator answered \(http.statusCode) for \(path)\(detail)")
        }
        var headers: [String: String] = [:]
        if let http = response as? HTTPURLResponse { for (k, v) in http.allHeaderFields { headers["\(k)".lowercased()] = "\(v)" } }
        return (data, headers)
    }

    /// POSTs a JSON body; the answer's body.
    func post(_ path: String, json body: Data) async throws -> Data {
        try await getResponse(path, method: "POST", body: body).data
    }

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> (Data, T) {
        let data = try await getData(path)
        do { return (data, try JSONDecoder().decode(T.self, from: data)) } catch {
            throw CLIError("unexpected answer from \(path): \(error). Is \(baseURL) a Gemello aggregator of the same version?")
        }
    }

    /// `http://host[:port][/path]` or `https://…`.
    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "http" || scheme == "https" else { return false }
        return !(url.host ?? "").isEmpty
    }

    static let smartDataModelsContext = "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld"

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? text
    }
}

/// A failure shown to the operator as `gemello: <what, and the fix>` on standard error, with the
/// exit status of its kind (docs/OPERATIONS.md, "The CLI's exit status"): 1 for a failure (the
/// aggregator unreachable, or answering an error) and for what is not found, 64 for a command line
/// that is wrong, 78 for a configuration file that is. Never a usage line: only ArgumentParser's
/// own parsing errors print one (64).
struct CLIError: Error, CustomStringConvertible {
    enum Kind: Sendable {
        case failure, notFound, usage, configuration
    }
    let description: String
    var kind = Kind.failure
    init(_ description: String) { self.description = description }
    var isNotFound: Bool { kind == .notFound }

    static func notFound(_ description: String) -> CLIError { CLIError(description, .notFound) }
    static func usage(_ description: String) -> CLIError { CLIError(description, .usage) }
    static func configuration(_ description: String) -> CLIError { CLIError(description, .configuration) }
    private init(_ description: String, _ kind: Kind) {
        self.description = description
        self.kind = kind
    }

    /// The process's exit status (sysexits.h: EX_USAGE 64, EX_CONFIG 78).
    var exitCode: Int32 {
        switch kind {
        case .failure, .notFound: 1
        case .usage: 64
        case .configuration: 78
        }
    }
}

enum Environment {
    static func value(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }
}
