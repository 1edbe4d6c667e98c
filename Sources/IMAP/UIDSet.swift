/// A set of UIDs printed compactly as an RFC 3501 §9 `sequence-set`: sorted, de-duplicated, with
/// consecutive UIDs merged into ranges.
///
///     UIDSet([UID(7), UID(1), UID(2), UID(3), UID(9), UID(10)]).description == "1:3,7,9:10"
public struct UIDSet: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Disjoint, non-adjacent ranges in ascending order.
    private var ranges: [ClosedRange<UInt32>]
    /// The last range runs to `*`, the highest UID in the mailbox (only `UIDSet.all`).
    private var endsWithStar = false

    public init<S: Sequence>(_ uids: S) where S.Element == UID {
        let sorted = uids.map(\.rawValue).sorted()
        var ranges: [ClosedRange<UInt32>] = []
        for value in sorted {
            if let last = ranges.last {
                if value == last.upperBound { continue }
                if value == last.upperBound + 1 {
                    ranges[ranges.count - 1] = last.lowerBound...value
                    continue
                }
            }
            ranges.append(value...value)
        }
        self.ranges = ranges
    }

    /// All UIDs from `range.lowerBound` through `range.upperBound`.
    public init(_ range: ClosedRange<UID>) {
        self.ranges = [range.lowerBound.rawValue...range.upperBound.rawValue]
    }

    /// Every message in the mailbox: `1:*`. Its `count` is the size of the UID space, as `*` is unknown here.
    public static let all: UIDSet = {
        var set = UIDSet([UID]())
        set.ranges = [1...UInt32.max]
        set.endsWithStar = true
        return set
    }()

    public var isEmpty: Bool { ranges.isEmpty }

    public var count: Int { ranges.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } }

    public func contains(_ uid: UID) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < uid.rawValue { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(uid.rawValue)
    }

    /// The wire form, e.g. `1:5,7,9:10`. An empty set prints as the empty string, which is not a valid
    /// sequence-set: callers must not send a command for an empty set.
    public var description: String {
        var text = ""
        for (index, range) in ranges.enumerated() {
            if index > 0 { text += "," }
            let isLast = index == ranges.count - 1
            if isLast && endsWithStar {
                text += "\(range.lowerBound):*"
            } else if range.lowerBound == range.upperBound {
                text += String(range.lowerBound)
            } else {
                text += "\(range.lowerBound):\(range.upperBound)"
            }
        }
        return text
    }
}
