import Synchronization
import Testing
@testable import FDFSFileSystem

@Suite("Upload slots")
struct UploadSlotsTests {
    final class Holders: Sendable {
        let state = Mutex((now: 0, peak: 0))
        func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
        func leave() { state.withLock { $0.now -= 1 } }
        var peak: Int { state.withLock { $0.peak } }
    }

    @Test func neverMoreHoldersThanTheLimitAndEveryWaiterServed() async {
        let slots = UploadSlots(limit: 3)
        let holders = Holders()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    await slots.acquire()
                    holders.enter()
                    try? await Task.sleep(for: .milliseconds(1))
                    holders.leave()
                    slots.release()
                }
            }
        }
        #expect(holders.peak <= 3)
        #expect(slots.peakInUse == 3)
        // All released: the three slots are free again (a fourth acquire would wait).
        for _ in 0..<3 { await slots.acquire() }
        for _ in 0..<3 { slots.release() }
    }
}
