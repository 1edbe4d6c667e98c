import FrontDoor
import XCTest

/// An IPv4 client numbered `n`.
private func key(_ n: Int) -> ClientKey {
    let v = UInt32(truncatingIfNeeded: n)
    return ClientKey(addressBytes: [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)])!
}

private let a = key(1), b = key(2), c = key(3), d = key(4), e = key(5)

final class ClientTableTests: XCTestCase {
    let t0 = ContinuousClock.now

    // MARK: Limits

    func testDefaults() {
        let limits = ClientTable.Limits()
        XCTAssertEqual(limits.connections, 10_000)
        XCTAssertEqual(limits.connectionsPerClient, 50)
        XCTAssertEqual(limits.trackedClients, 100_000)
        XCTAssertEqual(limits.failureDelay, .seconds(2))
        XCTAssertEqual(limits.failureDelayMax, .seconds(15))
        XCTAssertEqual(limits.penaltyExpiry, .seconds(3600))
        XCTAssertEqual(limits.refusalLogInterval, .seconds(60))
    }

    func testPerClientLimit() {
        var table = ClientTable(limits: .init(connections: 10, connectionsPerClient: 2))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.openConnections(of: a), 2, "a refused connection is not counted")
        XCTAssertEqual(table.openConnections, 2)

        XCTAssertEqual(table.connectionOpened(b, now: t0), .admitted, "another client is still admitted")
        XCTAssertEqual(table.openConnections(of: b), 1)
        XCTAssertEqual(table.openConnections, 3)

        table.connectionClosed(a)
        XCTAssertEqual(table.openConnections(of: a), 1)
        XCTAssertEqual(table.openConnections, 2)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted, "a close frees a slot")
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: false))
        XCTAssertEqual(table.openConnections(of: a), 2)
    }

    func testTotalLimit() {
        var table = ClientTable(limits: .init(connections: 3, connectionsPerClient: 10))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(b, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(c, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.openConnections, 3)
        XCTAssertEqual(table.openConnections(of: c), 0)

        table.connectionClosed(b)
        XCTAssertEqual(table.openConnections, 2)
        XCTAssertEqual(table.openConnections(of: b), 0)
        XCTAssertEqual(table.connectionOpened(c, now: t0), .admitted, "a close frees a slot for anyone")
        XCTAssertEqual(table.connectionOpened(d, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.openConnections, 3)
    }

    func testPerClientLimitIsReportedBeforeTotal() {
        var table = ClientTable(limits: .init(connections: 1, connectionsPerClient: 1))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.connectionOpened(b, now: t0), .refused(.total, log: true))
    }

    func testCountsNeverGoNegative() {
        var table = ClientTable(limits: .init(connections: 2, connectionsPerClient: 1))
        table.connectionClosed(a)
        XCTAssertEqual(table.openConnections(of: a), 0)
        XCTAssertEqual(table.openConnections, 0)

        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        table.connectionClosed(b)  // never opened: must not take a's connection off the total
        XCTAssertEqual(table.openConnections, 1)
        table.connectionClosed(a)
        table.connectionClosed(a)
        XCTAssertEqual(table.openConnections(of: a), 0)
        XCTAssertEqual(table.openConnections, 0)

        // The limits still hold after the stray closes: no credit was built up.
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.connectionOpened(b, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(c, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.openConnections, 2)
    }

    func testZeroLimitsRefuseEverything() {
        var table = ClientTable(limits: .init(connections: 0, connectionsPerClient: 5))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
        table.update(limits: .init(connections: 5, connectionsPerClient: 0))
        XCTAssertEqual(table.connectionOpened(b, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.openConnections, 0)
    }

    // MARK: Refusal logging

    func testRefusalIsLoggedOncePerIntervalPerClient() {
        var table = ClientTable(limits: .init(connections: 1, connectionsPerClient: 1))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: false))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(1)), .refused(.perClient, log: false))
        XCTAssertEqual(table.connectionOpened(b, now: t0 + .seconds(1)), .refused(.total, log: true), "per key")
        XCTAssertEqual(table.connectionOpened(b, now: t0 + .seconds(2)), .refused(.total, log: false))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(59)), .refused(.perClient, log: false))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .milliseconds(59_999)), .refused(.perClient, log: false))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(60)), .refused(.perClient, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(61)), .refused(.perClient, log: false))
        XCTAssertEqual(table.connectionOpened(b, now: t0 + .seconds(60)), .refused(.total, log: false))
        XCTAssertEqual(table.connectionOpened(b, now: t0 + .seconds(61)), .refused(.total, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(120)), .refused(.perClient, log: true))
        XCTAssertEqual(table.trackedCount, 2)
    }

    func testRefusalLogIntervalIsConfigurable() {
        var limits = ClientTable.Limits(connections: 0)
        limits.refusalLogInterval = .seconds(5)
        var table = ClientTable(limits: limits)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(4)), .refused(.total, log: false))
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(5)), .refused(.total, log: true))
    }

    func testAdmittedConnectionsDoNotUseTheTrackedTable() {
        var table = ClientTable(limits: .init())
        for n in 0..<100 { XCTAssertEqual(table.connectionOpened(key(n), now: t0), .admitted) }
        XCTAssertEqual(table.trackedCount, 0)
        XCTAssertEqual(table.openConnections, 100)
    }

    // MARK: Penalty

    func testPenaltySequence() {
        var table = ClientTable(limits: .init(failureDelay: .seconds(2), failureDelayMax: .seconds(15)))
        var seen: [Duration] = [table.penalty(for: a, now: t0)]
        for n in 1...5 {
            table.loginFailed(a, now: t0 + .seconds(n))
            seen.append(table.penalty(for: a, now: t0 + .seconds(n)))
        }
        XCTAssertEqual(seen, [.zero, .seconds(2), .seconds(4), .seconds(8), .seconds(15), .seconds(15)])
        XCTAssertEqual(table.penalty(for: b, now: t0 + .seconds(5)), .zero, "only the failing client pays")
    }

    func testPenaltyWithAnUnevenStep() {
        var table = ClientTable(limits: .init(failureDelay: .milliseconds(300), failureDelayMax: .seconds(2)))
        var seen: [Duration] = []
        for _ in 1...5 {
            table.loginFailed(a, now: t0)
            seen.append(table.penalty(for: a, now: t0))
        }
        XCTAssertEqual(seen, [.milliseconds(300), .milliseconds(600), .milliseconds(1200), .seconds(2), .seconds(2)])
    }

    func testPenaltyExpiresAfterAQuietPeriod() {
        var table = ClientTable(limits: .init(penaltyExpiry: .seconds(3600)))
        table.loginFailed(a, now: t0)
        table.loginFailed(a, now: t0 + .seconds(10))
        table.loginFailed(a, now: t0 + .seconds(3000))  // expiry counts from the latest failure
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(3000)), .seconds(8))
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(6599)), .seconds(8))
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(6600)), .zero)
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(100_000)), .zero)

        // A failure after the quiet period starts counting from one again.
        table.loginFailed(a, now: t0 + .seconds(7000))
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(7000)), .seconds(2))
        table.loginFailed(a, now: t0 + .seconds(7001))
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(7001)), .seconds(4))
    }

    func testSuccessResetsThePenalty() {
        var table = ClientTable(limits: .init())
        for _ in 0..<3 { table.loginFailed(a, now: t0) }
        table.loginFailed(b, now: t0)
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(8))
        table.loginSucceeded(a)
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        XCTAssertEqual(table.penalty(for: b, now: t0), .seconds(2), "other clients keep theirs")
        XCTAssertEqual(table.trackedCount, 1, "an entry with nothing left to remember is dropped")
        table.loginFailed(a, now: t0 + .seconds(1))
        XCTAssertEqual(table.penalty(for: a, now: t0 + .seconds(1)), .seconds(2))
        table.loginSucceeded(c)  // unknown: nothing happens
        XCTAssertEqual(table.trackedCount, 2)
    }

    func testSuccessKeepsTheRefusalLogTime() {
        var table = ClientTable(limits: .init(connections: 0))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
        table.loginFailed(a, now: t0)
        table.loginSucceeded(a)
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        XCTAssertEqual(table.trackedCount, 1)
        XCTAssertEqual(table.connectionOpened(a, now: t0 + .seconds(1)), .refused(.total, log: false))
    }

    func testNoOverflowWithManyFailures() {
        var table = ClientTable(limits: .init())
        for _ in 0..<10_000 { table.loginFailed(a, now: t0) }
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(15))

        // A cap near Duration's range: doubling must stop at the cap instead of overflowing.
        let huge = Duration.seconds(Int64.max / 2)
        table.update(limits: .init(failureDelay: .seconds(2), failureDelayMax: huge))
        XCTAssertEqual(table.penalty(for: a, now: t0), huge)
        table.update(limits: .init(failureDelay: .seconds(Int64.max / 3), failureDelayMax: .seconds(Int64.max)))
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(Int64.max))
    }

    func testZeroFailureDelayMeansNoPenalty() {
        var table = ClientTable(limits: .init(failureDelay: .zero))
        for _ in 0..<5 { table.loginFailed(a, now: t0) }
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        table.update(limits: .init(failureDelay: .seconds(2), failureDelayMax: .zero))
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        table.update(limits: .init(failureDelay: .seconds(20), failureDelayMax: .seconds(15)))
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(15), "the cap wins over a larger first step")
    }

    // MARK: LRU

    func testTrackedTableNeverExceedsItsCapacity() {
        var table = ClientTable(limits: .init(trackedClients: 1000))
        var largest = 0
        for n in 0..<1_000_000 {
            table.loginFailed(key(n), now: t0)
            largest = max(largest, table.trackedCount)
        }
        XCTAssertEqual(largest, 1000)
        XCTAssertEqual(table.trackedCount, 1000)
        XCTAssertEqual(table.penalty(for: key(999_999), now: t0), .seconds(2))
        XCTAssertEqual(table.penalty(for: key(999_000), now: t0), .seconds(2), "the newest 1000 are kept")
        XCTAssertEqual(table.penalty(for: key(998_999), now: t0), .zero, "older ones are forgotten")
        XCTAssertEqual(table.penalty(for: key(0), now: t0), .zero)
    }

    func testRefusalsAlsoStayWithinCapacity() {
        var table = ClientTable(limits: .init(connections: 0, trackedClients: 10))
        for n in 0..<1000 {
            XCTAssertEqual(table.connectionOpened(key(n), now: t0), .refused(.total, log: true))
            XCTAssertLessThanOrEqual(table.trackedCount, 10)
        }
        XCTAssertEqual(table.connectionOpened(key(999), now: t0), .refused(.total, log: false))
        XCTAssertEqual(table.connectionOpened(key(0), now: t0), .refused(.total, log: true), "evicted, so forgotten")
    }

    func testLeastRecentlyUsedIsEvictedFirst() {
        var table = ClientTable(limits: .init(trackedClients: 3))
        table.loginFailed(a, now: t0)
        table.loginFailed(b, now: t0)
        table.loginFailed(c, now: t0)
        table.loginFailed(a, now: t0)  // touches a: b is now the least recently used
        table.loginFailed(d, now: t0)
        XCTAssertEqual(table.trackedCount, 3)
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(4))
        XCTAssertEqual(table.penalty(for: b, now: t0), .zero)
        XCTAssertEqual(table.penalty(for: c, now: t0), .seconds(2))
        XCTAssertEqual(table.penalty(for: d, now: t0), .seconds(2))

        table.loginFailed(e, now: t0)  // c is next
        XCTAssertEqual(table.penalty(for: c, now: t0), .zero)
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(4))
        XCTAssertEqual(table.penalty(for: d, now: t0), .seconds(2))
        XCTAssertEqual(table.penalty(for: e, now: t0), .seconds(2))
        XCTAssertEqual(table.trackedCount, 3)
    }

    func testARefusalTouchesTheEntry() {
        var table = ClientTable(limits: .init(connections: 0, trackedClients: 2))
        table.loginFailed(a, now: t0)
        table.loginFailed(b, now: t0)
        _ = table.connectionOpened(a, now: t0)  // touches a
        table.loginFailed(c, now: t0)
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(2))
        XCTAssertEqual(table.penalty(for: b, now: t0), .zero)
        XCTAssertEqual(table.penalty(for: c, now: t0), .seconds(2))
    }

    func testReadingThePenaltyDoesNotTouch() {
        var table = ClientTable(limits: .init(trackedClients: 2))
        table.loginFailed(a, now: t0)
        table.loginFailed(b, now: t0)
        XCTAssertEqual(table.penalty(for: a, now: t0), .seconds(2))
        table.loginFailed(c, now: t0)
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        XCTAssertEqual(table.penalty(for: b, now: t0), .seconds(2))
    }

    func testRemovedEntriesAreReused() {
        var table = ClientTable(limits: .init(trackedClients: 3))
        for round in 0..<100 {
            for n in 0..<3 { table.loginFailed(key(round * 3 + n), now: t0) }
            XCTAssertEqual(table.trackedCount, 3)
            table.loginSucceeded(key(round * 3 + 1))
            XCTAssertEqual(table.trackedCount, 2)
        }
        // Left: 297 and 299. The freed slot takes a new key without evicting anyone...
        table.loginFailed(key(10_000), now: t0)
        XCTAssertEqual(table.trackedCount, 3)
        XCTAssertEqual([297, 298, 299, 10_000].map { table.penalty(for: key($0), now: t0) },
                       [.seconds(2), .zero, .seconds(2), .seconds(2)])
        // ...and the next one evicts the least recently used, 297.
        table.loginFailed(key(10_001), now: t0)
        XCTAssertEqual(table.trackedCount, 3)
        XCTAssertEqual([297, 299, 10_000, 10_001].map { table.penalty(for: key($0), now: t0) },
                       [.zero, .seconds(2), .seconds(2), .seconds(2)])
    }

    // MARK: Reload

    func testShrinkingTrackedClientsEvictsTheLeastRecentlyUsed() {
        var table = ClientTable(limits: .init(trackedClients: 5))
        for n in 0..<5 { table.loginFailed(key(n), now: t0) }
        table.loginFailed(key(0), now: t0)  // key(0) most recently used: 1, 2, 3, 4, 0 from oldest
        XCTAssertEqual(table.trackedCount, 5)

        table.update(limits: .init(trackedClients: 2))
        XCTAssertEqual(table.trackedCount, 2)
        XCTAssertEqual(table.limits.trackedClients, 2)
        XCTAssertEqual((0..<5).map { table.penalty(for: key($0), now: t0) },
                       [.seconds(4), .zero, .zero, .zero, .seconds(2)])

        // Still an LRU of the new size with the order kept.
        table.loginFailed(key(5), now: t0)
        XCTAssertEqual(table.trackedCount, 2)
        XCTAssertEqual(table.penalty(for: key(4), now: t0), .zero)
        XCTAssertEqual(table.penalty(for: key(0), now: t0), .seconds(4))
        XCTAssertEqual(table.penalty(for: key(5), now: t0), .seconds(2))

        // Growing again.
        table.update(limits: .init(trackedClients: 4))
        for n in 6..<10 { table.loginFailed(key(n), now: t0) }
        XCTAssertEqual(table.trackedCount, 4)
        XCTAssertEqual((5..<10).map { table.penalty(for: key($0), now: t0) },
                       [.zero, .seconds(2), .seconds(2), .seconds(2), .seconds(2)])

        // Zero keeps nothing.
        table.update(limits: .init(connections: 0, trackedClients: 0))
        XCTAssertEqual(table.trackedCount, 0)
        table.loginFailed(a, now: t0)
        XCTAssertEqual(table.penalty(for: a, now: t0), .zero)
        XCTAssertEqual(table.trackedCount, 0)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.total, log: true))
    }

    func testUpdateKeepsOpenCounts() {
        var table = ClientTable(limits: .init(connections: 10, connectionsPerClient: 5))
        for _ in 0..<3 { XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted) }
        XCTAssertEqual(table.connectionOpened(b, now: t0), .admitted)

        table.update(limits: .init(connections: 3, connectionsPerClient: 2))
        XCTAssertEqual(table.openConnections(of: a), 3, "existing sessions are not cut")
        XCTAssertEqual(table.openConnections, 4)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .refused(.perClient, log: true))
        XCTAssertEqual(table.connectionOpened(c, now: t0), .refused(.total, log: true))
        table.connectionClosed(a)
        table.connectionClosed(a)
        XCTAssertEqual(table.openConnections, 2)
        XCTAssertEqual(table.connectionOpened(a, now: t0), .admitted)
        XCTAssertEqual(table.connectionOpened(c, now: t0), .refused(.total, log: false))
    }

    // MARK: Against a model

    /// Random operations against a plain array model of the LRU; any slip in the linked list shows as a difference.
    func testMatchesASimpleModel() {
        struct Entry { var key: ClientKey; var failures: Int; var lastFailure: ContinuousClock.Instant; var lastLog: ContinuousClock.Instant? }
        var rng = SplitMix64(seed: 42)
        var capacity = 8
        let limits = { (capacity: Int) in
            ClientTable.Limits(connections: 0, trackedClients: capacity, failureDelay: .seconds(2),
                               failureDelayMax: .seconds(15), penaltyExpiry: .seconds(300), refusalLogInterval: .seconds(60))
        }
        var table = ClientTable(limits: limits(capacity))
        var model: [Entry] = []  // most recently used first
        var now = t0
        let keys = (0..<20).map(key)

        func modelTouch(_ k: ClientKey) -> Int? {
            if let i = model.firstIndex(where: { $0.key == k }) {
                model.insert(model.remove(at: i), at: 0)
                return 0
            }
            guard capacity > 0 else { return nil }
            if model.count >= capacity { model.removeLast() }
            model.insert(Entry(key: k, failures: 0, lastFailure: now, lastLog: nil), at: 0)
            return 0
        }

        for step in 0..<20_000 {
            now = now + .seconds(Int(rng.next() % 40))
            let k = keys[Int(rng.next() % 20)]
            switch rng.next() % 10 {
            case 0...4:
                table.loginFailed(k, now: now)
                if modelTouch(k) != nil {
                    if model[0].failures > 0 && now - model[0].lastFailure >= .seconds(300) { model[0].failures = 0 }
                    model[0].failures += 1
                    model[0].lastFailure = now
                }
            case 5, 6:
                let got = table.connectionOpened(k, now: now)
                var log = true
                if modelTouch(k) != nil {
                    if let last = model[0].lastLog, now - last < .seconds(60) { log = false } else { model[0].lastLog = now }
                }
                XCTAssertEqual(got, .refused(.total, log: log), "step \(step)")
            case 7, 8:
                table.loginSucceeded(k)
                if let i = model.firstIndex(where: { $0.key == k }) {
                    if model[i].lastLog == nil { model.remove(at: i) } else { model[i].failures = 0 }
                }
            default:
                if rng.next() % 20 == 0 {
                    capacity = Int(rng.next() % 10)
                    table.update(limits: limits(capacity))
                    if model.count > capacity { model.removeLast(model.count - capacity) }
                }
            }
            XCTAssertEqual(table.trackedCount, model.count, "step \(step)")
            for probe in keys {
                var expected = Duration.zero
                if let entry = model.first(where: { $0.key == probe }), entry.failures > 0,
                   now - entry.lastFailure < .seconds(300) {
                    let steps: [Duration] = [.seconds(2), .seconds(4), .seconds(8)]
                    expected = entry.failures <= steps.count ? steps[entry.failures - 1] : .seconds(15)
                }
                XCTAssertEqual(table.penalty(for: probe, now: now), expected, "step \(step) key \(probe)")
            }
        }
    }
}

/// A small deterministic generator so the model test is repeatable.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A PROXY protocol listener's connections: counted in the total at accept, per client once the header is read.
final class UnidentifiedConnectionTests: XCTestCase {
    let t0 = ContinuousClock.now

    func testTheProxyIsNotChargedPerClient() {
        var table = ClientTable(limits: .init(connections: 10, connectionsPerClient: 2))
        // Five connections from one proxy, above the per-client limit of 2: all admitted.
        for _ in 0..<5 { XCTAssertEqual(table.unidentifiedConnectionOpened(peer: a, now: t0), .admitted) }
        XCTAssertEqual(table.openConnections, 5)
        XCTAssertEqual(table.openConnections(of: a), 0)
        // Their headers name b, b, b, c, and a (the proxy's own address is a client like any other).
        XCTAssertEqual(table.connectionIdentified(b, now: t0), .admitted)
        XCTAssertEqual(table.connectionIdentified(b, now: t0), .admitted)
        XCTAssertEqual(table.connectionIdentified(b, now: t0), .refused(.perClient, log: true), "b over its own limit")
        XCTAssertEqual(table.connectionIdentified(c, now: t0), .admitted, "one client over its limit does not block another")
        XCTAssertEqual(table.openConnections, 5, "identifying does not count twice")
        XCTAssertEqual(table.openConnections(of: b), 2)
        XCTAssertEqual(table.openConnections(of: c), 1)
        table.unidentifiedConnectionClosed()   // b's refused third
        XCTAssertEqual(table.openConnections, 4)
        XCTAssertEqual(table.connectionIdentified(a, now: t0), .admitted)
        table.unidentifiedConnectionClosed()   // the fifth: its header never came
        XCTAssertEqual(table.openConnections, 4)
        table.unidentifiedConnectionClosed()   // none left: ignored
        XCTAssertEqual(table.openConnections, 4)
        for key in [b, b, c, a] { table.connectionClosed(key) }
        XCTAssertEqual(table.openConnections, 0)
        XCTAssertEqual(table.openConnections(of: b), 0)
    }

    func testTotalAppliesAtAccept() {
        var table = ClientTable(limits: .init(connections: 2, connectionsPerClient: 2))
        XCTAssertEqual(table.connectionOpened(b, now: t0), .admitted)
        XCTAssertEqual(table.unidentifiedConnectionOpened(peer: a, now: t0), .admitted)
        XCTAssertEqual(table.unidentifiedConnectionOpened(peer: a, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.unidentifiedConnectionOpened(peer: a, now: t0), .refused(.total, log: false), "logged once a minute per proxy")
        XCTAssertEqual(table.unidentifiedConnectionOpened(peer: nil, now: t0), .refused(.total, log: true))
        XCTAssertEqual(table.openConnections, 2)
        // Without an unidentified one open, identifying counts a new connection (and the total applies).
        XCTAssertEqual(table.connectionIdentified(c, now: t0), .admitted)
        XCTAssertEqual(table.openConnections, 2)
        XCTAssertEqual(table.connectionIdentified(d, now: t0), .refused(.total, log: true))
    }

    func testRefusalLogThrottle() {
        var table = ClientTable(limits: .init(refusalLogInterval: .seconds(60)))
        XCTAssertTrue(table.shouldLogRefusal(of: a, now: t0))
        XCTAssertFalse(table.shouldLogRefusal(of: a, now: t0 + .seconds(59)))
        XCTAssertTrue(table.shouldLogRefusal(of: b, now: t0 + .seconds(59)))
        XCTAssertTrue(table.shouldLogRefusal(of: a, now: t0 + .seconds(60)))
    }
}
