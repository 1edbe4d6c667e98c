import CSystemd
import Glibc

/// The service manager notification protocol (`sd_notify(3)`), for `Type=notify` / `Type=notify-reload`
/// units. Every call is a no-op when `NOTIFY_SOCKET` is unset, so the gateway calls these unconditionally.
///
/// ```
/// READY=1
/// STATUS=listening on pop3s
/// ```
public enum ServiceNotifier {
    /// Sends `state` (newline-separated `KEY=value` assignments) with `sd_notify(0, state)`.
    /// - Returns: `true` when the datagram was sent; `false` when `NOTIFY_SOCKET` is unset or sending
    ///   failed. Never throws: a lost notification must not take the gateway down.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// `READY=1`, with `STATUS=` on a second line when given: startup finished, listeners are open.
    public static func ready(status: String? = nil) {
        var state = "READY=1"
        if let status {
            state += "\nSTATUS=" + oneLine(status)
        }
        notify(state)
    }

    /// `RELOADING=1` and `MONOTONIC_USEC=<n>`: a reload started at `monotonicMicroseconds` (CLOCK_MONOTONIC).
    /// `Type=notify-reload` requires both; send `ready()` when the reload is done.
    public static func reloading(monotonicMicroseconds: UInt64) {
        notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds)")
    }

    /// `STOPPING=1`: shutdown (drain) started.
    public static func stopping() {
        notify("STOPPING=1")
    }

    /// `STATUS=<line>`, shown by `systemctl status`.
    public static func status(_ line: String) {
        notify("STATUS=" + oneLine(line))
    }

    /// `WATCHDOG=1`: keep-alive ping; send it about every half of `watchdogInterval()`.
    public static func watchdogPing() {
        notify("WATCHDOG=1")
    }

    /// The watchdog interval (`WatchdogSec=`, passed as `WATCHDOG_USEC`) when the watchdog is enabled for
    /// this process, else `nil`. Uses `sd_watchdog_enabled(0, …)`, which also checks `WATCHDOG_PID`.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else {
            return nil
        }
        return .microseconds(Int64(clamping: usec))
    }

    /// Now on CLOCK_MONOTONIC, in microseconds: the clock `MONOTONIC_USEC=` is measured on.
    public static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    /// A newline in a STATUS= value would start another assignment (e.g. `STOPPING=1`) in the same
    /// datagram, so control characters become spaces.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            result.append(isControl(scalar) ? " " : scalar)
        }
        return String(result)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
