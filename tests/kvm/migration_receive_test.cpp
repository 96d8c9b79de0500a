// The destination of a live migration (Vmm::receive_migration) against a
// fake source that hangs up at each step, from before the Hello to a state
// it cannot load: each is refused, and the machine the destination built on
// the Hello is dropped (no VM is left).
#include "kvm/tiny_guest.h"
#include "support/fake_migration_source.h"

namespace rv::migration::test {
namespace {

class ReceiveMigrationKvm : public ::testing::TestWithParam<StopAfter> {};

TEST_P(ReceiveMigrationKvm, AMigrationThatStopsShortLeavesNoVm) {
    RV_REQUIRE_KVM();
    expect_refused_without_vm(GetParam());
}

INSTANTIATE_TEST_SUITE_P(EachStep, ReceiveMigrationKvm,
                         ::testing::Values(StopAfter::Connect, StopAfter::BadMagic,
                                           StopAfter::Hello, StopAfter::HalfAPage,
                                           StopAfter::Pages, StopAfter::State,
                                           StopAfter::BadState));

}  // namespace
}  // namespace rv::migration::test
