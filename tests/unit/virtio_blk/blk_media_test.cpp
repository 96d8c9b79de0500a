// virtio-blk media change (PATCH /drives/{id} path_on_host while running).
#include "blk_test_util.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

uint64_t capacity(virtio::VirtioBlk& dev) {
    uint64_t sectors = 0;
    std::array<uint8_t, 8> b{};
    dev.read_config(0, b);
    std::memcpy(&sectors, b.data(), sizeof sectors);
    return sectors;
}

TEST_F(BlkTest, MediaChangeSwitchesImagesAndTellsTheGuest) {
    TempImage other{2 * kImageSize};
    other.write(0, pattern(512, 9));
    m_image.write(0, pattern(512, 3));
    start({.engine = BlockOptions::Engine::IoUring});
    EXPECT_EQ(capacity(*m_dev), kImageSize / 512);

    // A write in flight on the old image when the change comes finishes there.
    uint16_t w = m_driver.add_chain({{blk_header(kTOut, 8), false}, {pattern(512, 4), false}, {1, true}});
    m_dev->queue_notify(0);
    auto backend = BlockBackend::open(other.path(), m_dev->backend_options());
    ASSERT_TRUE(backend);
    const int config_before = m_irq->config;
    ASSERT_TRUE(m_dev->replace_backend(std::move(*backend)));
    EXPECT_EQ(next_status(w), kSOk);
    EXPECT_EQ(m_image.read(8 * 512, 512), pattern(512, 4)) << "the in-flight write reached the old image";

    EXPECT_EQ(capacity(*m_dev), 2 * kImageSize / 512) << "the new capacity is in config space";
    EXPECT_EQ(m_irq->config, config_before + 1) << "the guest is told to re-read the config";
    uint16_t r = m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(r), kSOk);
    auto got = m_driver.writable_data(r);
    got.pop_back();
    EXPECT_EQ(got, pattern(512, 9)) << "reads come from the new image";
    // A request past the old end but inside the new one works.
    uint16_t far = m_driver.add_chain({{blk_header(kTIn, kImageSize / 512 + 10), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(far), kSOk);
}

TEST_F(BlkTest, MediaChangeKeepsTheReadOnlyMode) {
    start();
    TempImage other{kImageSize};
    BlockOptions ro = m_dev->backend_options();
    ro.read_only = true;
    auto backend = BlockBackend::open(other.path(), ro);
    ASSERT_TRUE(backend);
    auto r = m_dev->replace_backend(std::move(*backend));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is_input());
}

}  // namespace
}  // namespace rv::test
