/// Parses the block-style YAML subset Gemello's configs use: nested mappings, sequences
/// (`- item`, `- key: value`), plain and quoted scalars, flow lists (`[a, b]`), comments.
///
/// Why not Yams: it imports Foundation, which alone would take the agent past its 10 MB RSS
/// budget; and our own parser keeps line numbers for every key, which error messages need.
/// Anchors, aliases, tags, multi-line scalars and flow mappings are refused with a clear error.
public struct YAMLParser {
    struct Line {
        var number: Int
        var indent: Int
        var text: Substring
    }

    private var lines: [Line]
    private var position = 0
    private let file: String

    /// Parses `text`; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(CoreError) -> YAMLNode {
        var parser = try YAMLParser(text: text, file: file)
        guard !parser.lines.isEmpty else { return YAMLNode(.mapping([]), line: 1) }
        let root = try parser.parseBlock(indent: parser.lines[0].indent)
        if parser.position < parser.lines.count {
            let line = parser.lines[parser.position]
            throw parser.error(line.number, "unexpected indentation", fix: "align this line with the keys above it")
        }
        return root
    }

    private init(text: String, file: String) throws(CoreError) {
        self.file = file
        var result: [Line] = []
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var content = raw
            if content.hasSuffix("\r") { content = content.dropLast() }
            content = Self.stripComment(content)
            let indent = content.prefix { $0 == " " }.count
            if content.dropFirst(indent).first == "\t" {
                throw CoreError(.invalidConfiguration, "tab used for indentation", file: file, line: offset + 1,
                                fix: "indent with spaces")
            }
            let trimmed = content.dropFirst(indent).trimmingTrailingSpaces()
            if trimmed.isEmpty || trimmed == "---" { continue }
            result.append(Line(number: offset + 1, indent: indent, text: trimmed))
        }
        lines = result
    }

    private func error(_ line: Int, _ message: String, fix: String? = nil) -> CoreError {
        CoreError(.invalidConfiguration, message, file: file, line: line, fix: fix)
    }

    /// Drops a `#` comment that starts the line or follows a space, outside quotes.
    static func stripComment(_ line: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        for index in line.indices {
            let c = line[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || previous == "\t") {
                return line[..<index]
            }
            previous = c
        }
        return line
    }

    private static func isSequenceItem(_ text: Substring) -> Bool { text == "-" || text.hasPrefix("- ") }

    private mutating func parseBlock(indent: Int) throws(CoreError) -> YAMLNode {
        Self.isSequenceItem(lines[position].text) ? try parseSequence(indent: indent) : try parseMapping(indent: indent)
    }

    private mutating func parseMapping(indent: Int) throws(CoreError) -> YAMLNode {
        let startLine = lines[position].number
        var entries: [YAMLEntry] = []
        while position < lines.count, lines[position].indent == indent, !Self.isSequenceItem(lines[position].text) {
            let line = lines[position]
            guard let (key, rest) = splitKey(line.text) else {
                throw error(line.number, "expected 'key: value', found '\(line.text)'",
                            fix: "write a key followed by a colon and a space")
            }
            if entries.contains(where: { $0.key == key }) {
                throw CoreError(.invalidConfiguration, "key appears twice in the same section", file: file,
                                line: line.number, key: key, fix: "keep one of them")
            }
            position += 1
            let node: YAMLNode
            if !rest.isEmpty {
                node = try parseInline(rest, line: line.number)
            } else if position < lines.count, lines[position].indent > indent {
                node = try parseBlock(indent: lines[position].indent)
            } else if position < lines.count, lines[position].indent == indent, Self.isSequenceItem(lines[position].text) {
                node = try parseSequence(indent: indent)
            } else {
                node = YAMLNode(.empty, line: line.number)
            }
            entries.append(YAMLEntry(key: key, line: line.number, node: node))
        }
        if position < lines.count, lines[position].indent > indent {
            throw error(lines[position].number, "unexpected indentation", fix: "align this line with the keys above it")
        }
        return YAMLNode(.mapping(entries), line: startLine)
    }

    private mutating func parseSequence(indent: Int) throws(CoreError) -> YAMLNode {
        let startLine = lines[position].number
        var items: [YAMLNode] = []
        while position < lines.count, lines[position].indent == indent, Self.isSequenceItem(lines[position].text) {
            let line = lines[position]
            let content = line.text.dropFirst(1).drop { $0 == " " }
            if content.isEmpty {
                position += 1
                guard position < lines.count, lines[position].indent > indent else {
                    items.append(YAMLNode(.empty, line: line.number))
                    continue
                }
                items.append(try parseBlock(indent: lines[position].indent))
            } else if splitKey(content) != nil || Self.isSequenceItem(content) {
                // "- key: value": the item is a block whose first line starts after "- ".
                let childIndent = indent + (line.text.count - content.count)
                lines[position] = Line(number: line.number, indent: childIndent, text: content)
                items.append(try parseBlock(indent: childIndent))
            } else {
                position += 1
                items.append(try parseInline(content, line: line.number))
            }
        }
        return YAMLNode(.sequence(items), line: startLine)
    }

    /// Splits `key: rest` at the first `: ` (or a trailing `:`) outside quotes.
    private func splitKey(_ text: Substring) -> (String, Substring)? {
        if let first = text.first, first == "\"" || first == "'" {
            guard let close = text.dropFirst().firstIndex(of: first) else { return nil }
            let after = text[text.index(after: close)...]
            guard after.first == ":" else { return nil }
            let rest = after.dropFirst()
            guard rest.isEmpty || rest.first == " " else { return nil }
            return (String(text[text.index(after: text.startIndex)..<close]), rest.drop { $0 == " " })
        }
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == ":" {
                let next = text.index(after: index)
                if next == text.endIndex || text[next] == " " {
                    let key = text[..<index].trimmingTrailingSpaces()
                    guard !key.isEmpty else { return nil }
                    return (String(key), text[next...].drop { $0 == " " })
                }
            }
            index = text.index(after: index)
        }
        return nil
    }

    private func parseInline(_ text: Substring, line: Int) throws(CoreError) -> YAMLNode {
        guard let first = text.first else { return YAMLNode(.empty, line: line) }
        switch first {
        case "&", "*", "!", "|", ">":
            throw error(line, "YAML feature '\(first)' (anchors, aliases, tags, block scalars) is not supported",
                        fix: "write the value out in full on one line")
        case "{":
            guard text == "{}" else {
                throw error(line, "flow mappings ('{...}') are not supported", fix: "write the mapping as indented 'key: value' lines")
            }
            return YAMLNode(.mapping([]), line: line)
        case "[":
            guard text.last == "]" else { throw error(line, "unterminated list '\(text)'", fix: "close the list with ']'") }
            let inner = text.dropFirst().dropLast()
            var items: [YAMLNode] = []
            for part in Self.splitFlow(inner) where !part.isEmpty {
                items.append(YAMLNode(.scalar(try unquote(part, line: line)), line: line))
            }
            return YAMLNode(.sequence(items), line: line)
        default:
            return YAMLNode(.scalar(try unquote(text, line: line)), line: line)
        }
    }

    static func splitFlow(_ text: Substring) -> [Substring] {
        var parts: [Substring] = []
        var quote: Character?
        var start = text.startIndex
        for index in text.indices {
            let c = text[index]
            if let q = quote { if c == q { quote = nil } }
            else if c == "\"" || c == "'" { quote = c }
            else if c == "," {
                parts.append(text[start..<index].drop { $0 == " " }.trimmingTrailingSpaces())
                start = text.index(after: index)
            }
        }
        parts.append(text[start...].drop { $0 == " " }.trimmingTrailingSpaces())
        return parts
    }

    private func unquote(_ text: Substring, line: Int) throws(CoreError) -> String {
        guard let first = text.first, first == "\"" || first == "'" else { return String(text) }
        guard text.count >= 2, text.last == first else {
            throw error(line, "unterminated quoted string \(text)", fix: "close the string with \(first)")
        }
        let inner = text.dropFirst().dropLast()
        if first == "'" { return inner.replacingOccurrences(of: "''", with: "'") }
        var out = ""
        var escaping = false
        for c in inner {
            if escaping {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\\": out.append("\\")
                case "\"": out.append("\"")
                default: out.append("\\"); out.append(c)
                }
                escaping = false
            } else if c == "\\" {
                escaping = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

extension Substring {
    func trimmingTrailingSpaces() -> Substring {
        var end = endIndex
        while end > startIndex, self[index(before: end)] == " " { end = index(before: end) }
        return self[startIndex..<end]
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        String(self).split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
