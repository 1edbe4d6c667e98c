// Route lookup time as the table grows from 10 to 100,000 domains (`make bench-routes`).
//
// Prints, per table size: the time to build the table, and the time per lookup for an exact domain,
// a subdomain taken by a wildcard, and a login no entry takes (the default route), side by side with
// the reference a naive router would be: a first-match scan of the same ordered list.
// Built in release mode only when POPGATE_BENCH is set, like the fuzz targets.
import Gateway
import Glibc
import Routing

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func table(_ count: Int) -> (RouteTable, [RouteEntry]) {
    var entries: [RouteEntry] = []
    entries.reserveCapacity(count + 1)
    for index in 0..<count {
        let match: RouteMatch = index % 10 == 9 ? .domainSuffix("hosted\(index).example") : .domain("customer\(index).example")
        entries.append(RouteEntry(match: match, route: Route(name: "r\(index)", backend: BackendTarget(host: "10.0.\(index % 250).1", port: 993))))
    }
    let built = try! RouteTable(entries: entries, defaultRoute: Route(backend: BackendTarget(host: "10.9.9.9", port: 993)))
    return (built, entries)
}

/// A first-match scan: what a router without an index does.
func scan(_ entries: [RouteEntry], _ user: String) -> Route? {
    guard let at = user.lastIndex(of: "@") else { return nil }
    let domain = String(user[user.index(after: at)...]).lowercased()
    for entry in entries {
        switch entry.match {
        case .domain(let d) where d == domain: return entry.route
        case .domainSuffix(let d) where domain.hasSuffix("." + d): return entry.route
        default: continue
        }
    }
    return nil
}

func perLookup(_ users: [String], rounds: Int, _ body: (String) -> Route?) -> Double {
    var sink = 0
    let start = now()
    for _ in 0..<rounds {
        for user in users { sink &+= body(user)?.backend.port.hashValue ?? 1 }
    }
    let elapsed = now() - start
    if sink == 42 { print("") }
    return elapsed / Double(rounds * users.count) * 1e9
}

print("route lookup: ns per lookup (median of 5), PopGate's RouteTable vs a first-match scan of the same list")
print("domains    build(ms)  exact  wildcard  default | scan exact  scan default")
for count in [10, 100, 1_000, 10_000, 100_000] {
    let t0 = now()
    let (routes, entries) = table(count)
    let build = (now() - t0) * 1000
    // Users spread over the whole table, so a scan pays its average cost.
    let exact = (0..<64).map { i -> String in let n = (i * 7919) % count; return "user\(i)@customer\(n % 10 == 9 ? n - 1 : n).example" }
    let wildcard = (0..<64).map { i -> String in let n = ((i * 7919) % max(1, count / 10)) * 10 + 9; return "user\(i)@mail.hosted\(min(n, count - 1)).example" }
    let unknown = (0..<64).map { "user\($0)@elsewhere\($0).example" }
    let rounds = max(1, 200_000 / 64)
    func median(_ f: () -> Double) -> Double { let v = (0..<5).map { _ in f() }.sorted(); return v[2] }
    let e = median { perLookup(exact, rounds: rounds) { routes.route(for: $0) } }
    let w = median { perLookup(wildcard, rounds: rounds) { routes.route(for: $0) } }
    let d = median { perLookup(unknown, rounds: rounds) { routes.route(for: $0) } }
    let scanRounds = max(1, 2_000_000 / (64 * count))
    let se = median { perLookup(exact, rounds: scanRounds) { scan(entries, $0) } }
    let sd = median { perLookup(unknown, rounds: scanRounds) { scan(entries, $0) } }
    func f(_ v: Double, _ w: Int) -> String { let s = String(Int(v.rounded())); return String(repeating: " ", count: max(0, w - s.count)) + s }
    print("\(f(Double(count), 7))  \(f(build, 11))  \(f(e, 5))  \(f(w, 8))  \(f(d, 7)) | \(f(se, 10))  \(f(sd, 12))")
}
