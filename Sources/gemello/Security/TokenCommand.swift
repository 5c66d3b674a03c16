import ArgumentParser
import Foundation
import GemelloCore

/// Where the API token file is: `--tokens-file`, `$GEMELLO_TOKENS_FILE`, or /var/lib/gemello/api-tokens
/// (the aggregator's `http.tokens-file`).
struct TokensFileOptions: ParsableArguments {
    @Option(name: .long, help: "The aggregator's http.tokens-file (default: $GEMELLO_TOKENS_FILE or /var/lib/gemello/api-tokens).")
    var tokensFile: String?

    var path: String { tokensFile ?? Environment.value("GEMELLO_TOKENS_FILE") ?? "/var/lib/gemello/api-tokens" }

    func load() throws -> APITokens {
        guard FileManager.default.fileExists(atPath: path) else { return APITokens() }
        let text: String
        do { text = try FileText.read(path) } catch { throw CLIError("cannot read \(path): \(error.reason)") }
        do { return try APITokens.parse(text, file: path) } catch { throw CLIError("\(error)") }
    }

    /// Replaced atomically, mode 0600: the aggregator never reads half a file.
    func save(_ tokens: APITokens) throws { try writeAtomically(tokens.format(), to: path, mode: 0o600) }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens for the aggregator's HTTP API: create (shown once), list, revoke.",
        discussion: "Tokens are kept as SHA-256 hashes in the aggregator's http.tokens-file; it re-reads the file within a second.",
        subcommands: [TokenCreateCommand.self, TokenListCommand.self, TokenRevokeCommand.self])
}

struct TokenCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a token with the given scopes and print it (the only time it is shown).",
        discussion: "Scopes: \(APITokens.Scope.allCases.map(\.rawValue).joined(separator: ", ")). admin includes all others.")

    @OptionGroup var file: TokensFileOptions
    @Option(name: .long, help: "Who or what holds the token (one word, e.g. control-room or dashboard-ops).")
    var name: String
    @Option(name: .long, help: "A scope (repeat for several).")
    var scope: [String] = []
    @Option(name: .long, help: "Expires after this many days (default: never).")
    var expiresDays: Int?
    @Option(name: .long, help: "Write the token to this file (mode 0600) instead of printing it.")
    var output: String?

    func validate() throws {
        guard APITokens.isValidName(name) else { throw ValidationError("--name must be one word of letters, digits, '-', '_', '.', '@' (got '\(name)')") }
        guard !scope.isEmpty else {
            throw ValidationError("name at least one --scope: \(APITokens.Scope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        for s in scope where APITokens.Scope(rawValue: s) == nil {
            throw ValidationError("'\(s)' is not a scope; use \(APITokens.Scope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let expiresDays, !(1...3650).contains(expiresDays) { throw ValidationError("--expires-days must be 1-3650") }
    }

    func run() throws {
        try reportingErrors {
            var tokens = try file.load()
            let now = SystemWallClock().nowMilliseconds()
            var generator = SystemRandomNumberGenerator()
            let (token, record) = APITokens.make(name: name, scopes: scope.compactMap(APITokens.Scope.init(rawValue:)),
                                                 createdAt: Timestamp.iso8601(milliseconds: now),
                                                 expiresAt: expiresDays.map { Timestamp.iso8601(milliseconds: now + Int64($0) * 86_400_000) },
                                                 using: &generator)
            tokens.upsert(record)
            try file.save(tokens)
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw CLIError("cannot write \(output)")
                }
                print("token \(record.id) '\(name)' (\(record.scopes.map(\.rawValue).joined(separator: ","))) written to \(output)")
            } else {
                print(token)
                Console.error("token \(record.id) '\(name)' (\(record.scopes.map(\.rawValue).joined(separator: ","))): shown once; send it as 'Authorization: Bearer <token>' (the CLI reads $GEMELLO_TOKEN or --token-file)")
            }
        }
    }
}

struct TokenListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The tokens in the file (ids, names, scopes; never the tokens).")
    @OptionGroup var file: TokensFileOptions
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let tokens = try file.load()
            if json {
                print("[" + tokens.records.map { r in
                    var w = JSONWriter()
                    w.field("id", r.id)
                    w.field("name", r.name)
                    w.field("scopes", raw: "[" + r.scopes.map { JSONWriter.quote($0.rawValue) }.joined(separator: ",") + "]")
                    w.field("status", r.status.rawValue)
                    w.field("createdAt", r.createdAt)
                    if let e = r.expiresAt { w.field("expiresAt", e) }
                    return w.finished()
                }.joined(separator: ",") + "]")
                return
            }
            guard !tokens.records.isEmpty else { print("no tokens in \(file.path)"); return }
            var table = Table(["ID", "NAME", "SCOPES", "STATUS", "CREATED", "EXPIRES"])
            for r in tokens.records {
                table.add([r.id, r.name, r.scopes.map(\.rawValue).joined(separator: ","), r.status.rawValue, r.createdAt, r.expiresAt ?? "never"])
            }
            print(table.render())
        }
    }
}

struct TokenRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by its id or name; the aggregator refuses it within a second.")
    @OptionGroup var file: TokensFileOptions
    @Argument(help: "The token's id (8 hex digits, as in 'gemello token list') or its name.")
    var token: String

    func run() throws {
        try reportingErrors {
            var tokens = try file.load()
            let matches = tokens.records.filter { ($0.id == token || $0.name == token) && $0.status == .active }
            guard !matches.isEmpty else { throw CLIError("no active token with id or name '\(token)' in \(file.path). Fix: 'gemello token list' shows them") }
            for var record in matches {
                record.status = .revoked
                tokens.upsert(record)
            }
            try file.save(tokens)
            print("revoked: " + matches.map { "\($0.id) '\($0.name)'" }.joined(separator: ", "))
        }
    }
}
