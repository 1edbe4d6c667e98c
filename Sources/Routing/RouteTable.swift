import Gateway

/// Which logins a route entry takes (`routes[].domain` or `routes[].user`).
public enum RouteMatch: Sendable, Hashable {
    /// The login's domain (after the last `@`), compared case-insensitively: `example.com`.
    case domain(String)
    /// Any subdomain of this domain, at any depth, not the domain itself: `*.example.org` is
    /// `.domainSuffix("example.org")` and takes `mail.example.org` and `a.b.example.org`.
    case domainSuffix(String)
    /// A regular expression the whole login must match (Swift `Regex` syntax, like PCRE for the usual
    /// cases): `user: "^legacy-.*@example\\.net$"`.
    case user(String)

    /// `example.com`, `*.example.org`, lower-cased; nil for an empty or malformed pattern.
    public static func domainPattern(_ text: String) -> RouteMatch? {
        let lowered = String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        if lowered.hasPrefix("*.") {
            let rest = String(lowered.dropFirst(2))
            return isDomain(rest) ? .domainSuffix(rest) : nil
        }
        return isDomain(lowered) ? .domain(lowered) : nil
    }

    /// Letters, digits, `-`, `_` and dots between non-empty labels (IDNs are written in their
    /// `xn--` form, as logins carry them).
    static func isDomain(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.allSatisfy { byte in
                (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
            }
        }
    }

    /// As written in the configuration.
    public var description: String {
        switch self {
        case .domain(let domain): domain
        case .domainSuffix(let domain): "*.\(domain)"
        case .user(let pattern): "user ~ \(pattern)"
        }
    }
}

/// One entry of `routes:` / `routes_file:`.
public struct RouteEntry: Sendable, Equatable {
    public var match: RouteMatch
    public var route: Route

    public init(match: RouteMatch, route: Route) {
        self.match = match
        self.route = route
    }
}

/// The static routing table: an ordered list of entries (the first that matches wins) and the
/// default route (the top-level `backend`).
///
/// Lookup cost does not grow with the number of domains: an exact domain is one hash lookup, a
/// wildcard one hash lookup per label of the login's domain, and only `user:` patterns are tried one
/// by one (keep them few; thousands of customers are routed by domain). Among the entries that match,
/// the one listed first wins, as in the file.
public struct RouteTable: Sendable, Equatable {
    public private(set) var entries: [RouteEntry]
    public var defaultRoute: Route?
    private var exact: [String: Int] = [:]
    private var suffixes: [String: Int] = [:]
    private var patterns: [(index: Int, regex: UserPattern)] = []

    /// Only the default route.
    public init(defaultRoute: Route?) {
        self.entries = []
        self.defaultRoute = defaultRoute
    }

    /// Fails on the first `user:` pattern that is not a valid regular expression.
    public init(entries: [RouteEntry], defaultRoute: Route?) throws(RoutePatternError) {
        self.entries = entries
        self.defaultRoute = defaultRoute
        for (index, entry) in entries.enumerated() {
            switch entry.match {
            case .domain(let domain):
                if exact[domain] == nil { exact[domain] = index }
            case .domainSuffix(let domain):
                if suffixes[domain] == nil { suffixes[domain] = index }
            case .user(let pattern):
                patterns.append((index, try UserPattern(pattern)))
            }
        }
    }

    public static func == (a: RouteTable, b: RouteTable) -> Bool {
        a.entries == b.entries && a.defaultRoute == b.defaultRoute
    }

    /// The route for `user` (the login name as given, `alice@example.com`), or nil when nothing matches
    /// and there is no default.
    public func route(for user: String) -> Route? {
        entry(for: user).map { entries[$0].route } ?? defaultRoute
    }

    /// The index of the first entry that takes `user`.
    public func entry(for user: String) -> Int? {
        var best: Int?
        func consider(_ index: Int?) {
            if let index, best.map({ index < $0 }) ?? true { best = index }
        }
        if let domain = Self.domain(of: user) {
            consider(exact[domain])
            if !suffixes.isEmpty {
                // `a.b.example.org` tries `b.example.org`, then `example.org`, then `org`.
                var rest = Substring(domain)
                while let dot = rest.firstIndex(of: ".") {
                    rest = rest[rest.index(after: dot)...]
                    consider(suffixes[String(rest)])
                }
            }
        }
        for (index, pattern) in patterns {
            if let current = best, current < index { break }
            if pattern.matches(user) {
                consider(index)
                break
            }
        }
        return best
    }

    /// The part after the last `@`, ASCII-lower-cased; nil when there is none.
    static func domain(of user: String) -> String? {
        RouteRequest(user: user, password: .init("")).domain
    }
}

/// A `user:` pattern that does not compile.
public struct RoutePatternError: Error, Sendable, CustomStringConvertible {
    public var pattern: String
    public var reason: String
    public var description: String { "invalid regular expression \"\(pattern)\": \(reason)" }
}

/// A compiled `user:` pattern. Swift's `Regex` is an immutable value, safe to share across the event
/// loops; the wrapper only states that for the type checker.
struct UserPattern: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws(RoutePatternError) {
        do {
            regex = try Regex(pattern)
        } catch {
            throw RoutePatternError(pattern: pattern, reason: "\(error)")
        }
    }

    func matches(_ user: String) -> Bool {
        (try? regex.wholeMatch(in: user)) != nil
    }
}

/// Checks a `user:` pattern without building a table (the configuration check).
public func routePatternProblem(_ pattern: String) -> String? {
    do {
        _ = try UserPattern(pattern)
        return nil
    } catch {
        return error.description
    }
}
