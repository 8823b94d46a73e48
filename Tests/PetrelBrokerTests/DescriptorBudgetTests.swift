import Testing

@testable import PetrelBroker

/// How the open-file limit is shared between segment files and connections.
@Suite("Descriptor budget")
struct DescriptorBudgetTests {
    @Test("unset values come from the limit and leave a reserve; connections at most 4096")
    func fromTheLimit() {
        let small = DescriptorBudget(openFileLimit: 256, segmentFiles: 0, connections: 0)
        #expect(small.segmentFiles == 128 && small.reserve == 80 && small.connections == 48)
        #expect(!small.isOvercommitted)
        let usual = DescriptorBudget(openFileLimit: 20_000, segmentFiles: 0, connections: 0)
        #expect(usual.segmentFiles == 10_000 && usual.connections == 4_096 && !usual.isOvercommitted)
        let common = DescriptorBudget(openFileLimit: 1_024, segmentFiles: 0, connections: 0)
        #expect(common.segmentFiles + common.connections + common.reserve <= 1_024 && common.connections > 300)
    }

    @Test("configured values are kept, and flagged when they could reach the limit")
    func configured() {
        let budget = DescriptorBudget(openFileLimit: 1_024, segmentFiles: 900, connections: 500)
        #expect(budget.segmentFiles == 900 && budget.connections == 500 && budget.isOvercommitted)
        let leftover = DescriptorBudget(openFileLimit: 1_024, segmentFiles: 1_000, connections: 0)
        #expect(leftover.connections == 1, "never zero connections")
    }
}
