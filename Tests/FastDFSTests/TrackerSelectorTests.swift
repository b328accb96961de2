// Tracker order, rotation and failover as the C client does it (§10.2), without sockets.

import Testing
@testable import FastDFS

@Suite("Tracker selection")
struct TrackerSelectorTests {
    let a = StorageAddress(host: "10.0.0.2", port: 22122)
    let b = StorageAddress(host: "10.0.0.10", port: 22122)
    let c = StorageAddress(host: "10.0.0.2", port: 22000)

    @Test func listIsSortedByHostStringThenPortAndDeduplicated() {
        let selector = TrackerSelector(trackers: [a, b, a, c])
        // "10.0.0.10" < "10.0.0.2" as strings (the C client compares strings).
        #expect(selector.trackers == [b, c, a])
    }

    @Test func successiveCallsRotateTheStartIndex() {
        var selector = TrackerSelector(trackers: [a, b, c])
        var starts: [Int] = []
        for _ in 0..<4 {
            let order = selector.candidates()
            starts.append(order[0])
            selector.callFinished(connectedIndex: order[0])
        }
        #expect(starts == [0, 1, 2, 0])
    }

    @Test func failoverTriesFollowingTrackersThenWrapsAround() {
        var selector = TrackerSelector(trackers: [a, b, c])
        selector.callFinished(connectedIndex: 0)  // next call starts at 1
        #expect(selector.candidates() == [1, 2, 0])
        // 1 and 2 refuse, 0 accepts: the next call starts after 0.
        selector.callFinished(connectedIndex: 0)
        #expect(selector.candidates() == [1, 2, 0])
    }

    @Test func successOnAnotherTrackerMovesTheIndexThere() {
        var selector = TrackerSelector(trackers: [a, b, c])
        #expect(selector.candidates() == [0, 1, 2])
        selector.callFinished(connectedIndex: 1)  // 0 refused, 1 answered
        #expect(selector.candidates() == [2, 0, 1])
    }

    @Test func allFailedStillAdvances() {
        var selector = TrackerSelector(trackers: [a, b])
        selector.callFinished(connectedIndex: nil)
        #expect(selector.candidates() == [1, 0])
    }

    @Test func emptyListHasNoCandidates() {
        var selector = TrackerSelector(trackers: [])
        #expect(selector.candidates().isEmpty)
        selector.callFinished(connectedIndex: nil)
    }
}
