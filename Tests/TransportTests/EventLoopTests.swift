import Dispatch
import Foundation
@testable import Transport
import XCTest

final class EventLoopTests: XCTestCase {
    func testExecuteRunsOnTheLoopQueue() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let ran = expectation(description: "ran")
        loop.execute {
            loop.preconditionInLoop()
            ran.fulfill()
        }
        wait(for: [ran], timeout: 5)
    }

    func testTimerFiresOnTheLoopAfterTheDelay() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let fired = expectation(description: "fired")
        let start = DispatchTime.now()
        let elapsed = Locked<UInt64>(0)
        let timer = loop.schedule(after: .milliseconds(80)) {
            loop.preconditionInLoop()
            elapsed.withLock { $0 = DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds }
            fired.fulfill()
        }
        wait(for: [fired], timeout: 5)
        XCTAssertGreaterThanOrEqual(elapsed.current, 75_000_000)
        timer.cancel()  // after firing: a harmless no-op
    }

    func testTimerFiresWithoutKeepingTheHandle() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let fired = expectation(description: "fired")
        _ = loop.schedule(after: .milliseconds(10)) { fired.fulfill() }
        wait(for: [fired], timeout: 5)
    }

    func testTimerFiresOnlyOnce() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let count = Locked(0)
        _ = loop.schedule(after: .milliseconds(5)) { count.withLock { $0 += 1 } }
        usleep(200_000)
        XCTAssertEqual(count.current, 1)
    }

    func testCancelBeforeFiringPreventsTheHandler() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let fired = expectation(description: "must not fire")
        fired.isInverted = true
        let timer = loop.schedule(after: .milliseconds(50)) { fired.fulfill() }
        timer.cancel()
        wait(for: [fired], timeout: 0.3)
    }

    /// A timer already due but not yet run (the loop is busy) must not run once cancelled on the loop.
    func testCancelOnTheLoopAfterTheDeadlineButBeforeTheHandlerRuns() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let fired = expectation(description: "must not fire")
        fired.isInverted = true
        let other = expectation(description: "other timer fires")
        loop.execute {
            let timer = loop.schedule(after: .zero) { fired.fulfill() }
            _ = loop.schedule(after: .milliseconds(20)) { other.fulfill() }
            usleep(50_000)  // both deadlines pass while the loop is busy here
            timer.cancel()
        }
        wait(for: [other], timeout: 5)
        wait(for: [fired], timeout: 0.2)
    }

    func testTimersFireInDeadlineOrder() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let order = Locked<[Int]>([])
        let done = expectation(description: "done")
        done.expectedFulfillmentCount = 3
        for (index, delay) in [60, 20, 40].enumerated() {
            _ = loop.schedule(after: .milliseconds(delay)) {
                order.withLock { $0.append(index) }
                done.fulfill()
            }
        }
        wait(for: [done], timeout: 5)
        XCTAssertEqual(order.current, [1, 2, 0])
    }

    func testGroupHandsOutLoopsRoundRobin() {
        let group = EventLoopGroup(loopCount: 3)
        XCTAssertEqual(group.loops.count, 3)
        let picked = (0..<7).map { _ in group.next() }
        for (index, loop) in picked.enumerated() {
            XCTAssertTrue(loop === group.loops[index % 3], "pick \(index)")
        }
        XCTAssertFalse(group.loops[0].queue === group.loops[1].queue)
    }

    func testGroupHasAtLeastOneLoop() {
        XCTAssertEqual(EventLoopGroup(loopCount: 0).loops.count, 1)
        XCTAssertEqual(EventLoopGroup(loopCount: -2).loops.count, 1)
    }

    func testLoopsAreSerial() {
        let loop = EventLoopGroup(loopCount: 1).next()
        let inside = Locked(0)
        let overlap = Locked(false)
        let done = expectation(description: "done")
        done.expectedFulfillmentCount = 50
        for _ in 0..<50 {
            DispatchQueue.global().async {
                loop.execute {
                    if inside.withLock({ $0 += 1; return $0 }) > 1 { overlap.withLock { $0 = true } }
                    usleep(100)
                    inside.withLock { $0 -= 1 }
                    done.fulfill()
                }
            }
        }
        wait(for: [done], timeout: 10)
        XCTAssertFalse(overlap.current)
    }

    func testDurationClampsToNanoseconds() {
        XCTAssertEqual(Duration.milliseconds(200).clampedNanoseconds, 200_000_000)
        XCTAssertEqual(Duration.seconds(2).clampedNanoseconds, 2_000_000_000)
        XCTAssertEqual(Duration.nanoseconds(7).clampedNanoseconds, 7)
        XCTAssertEqual(Duration.zero.clampedNanoseconds, 0)
        XCTAssertEqual(Duration.milliseconds(-5).clampedNanoseconds, 0)
        XCTAssertEqual(Duration.seconds(Int64.max).clampedNanoseconds, Int.max)
    }
}
