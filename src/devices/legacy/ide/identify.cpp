#include "devices/legacy/ide/identify.h"

#include <algorithm>

#include "devices/legacy/ide/ata.h"

namespace rv::ata {
namespace {

// ATA strings are space-padded and store the first character of each pair
// in the high byte of the word.
void put_string(IdentifyBlock& id, unsigned first_word, unsigned words, std::string_view text) {
    for (unsigned i = 0; i < words * 2; ++i) {
        char c = i < text.size() ? text[i] : ' ';
        if (c < 0x20 || c > 0x7E) c = ' ';
        uint16_t& w = id[first_word + i / 2];
        if (i % 2 == 0)
            w = static_cast<uint16_t>((w & 0x00FF) | (static_cast<uint8_t>(c) << 8));
        else
            w = static_cast<uint16_t>((w & 0xFF00) | static_cast<uint8_t>(c));
    }
}

void put32(IdentifyBlock& id, unsigned word, uint32_t v) {
    id[word] = static_cast<uint16_t>(v);
    id[word + 1] = static_cast<uint16_t>(v >> 16);
}

}  // namespace

uint16_t default_cylinders(uint64_t sectors) {
    uint64_t cyl = sectors / (uint64_t{kDefaultHeads} * kDefaultSectorsPerTrack);
    return static_cast<uint16_t>(std::clamp<uint64_t>(cyl, 1, kMaxCylinders));
}

IdentifyBlock build_identify(const IdentifyParams& p) {
    IdentifyBlock id{};
    uint16_t cylinders = default_cylinders(p.sectors);
    id[0] = 0x0040;  // fixed, non-removable ATA device
    id[1] = cylinders;
    id[3] = kDefaultHeads;
    id[6] = kDefaultSectorsPerTrack;
    put_string(id, 10, 10, p.serial);
    put_string(id, 23, 4, "1.0");
    put_string(id, 27, 20, "ringvisor HARDDISK");
    id[47] = 0x8000 | kMaxMultipleSectors;
    id[48] = 1;  // 32-bit PIO (obsolete word; libata ignores it, old drivers look)
    // Capabilities: IORDY supported, LBA, DMA.
    id[49] = (1 << 11) | (1 << 9) | (1 << 8);
    id[50] = 0x4000;
    id[51] = 0x0200;  // PIO mode 2 timing (obsolete field)
    id[53] = 0x0007;  // words 54-58, 64-70 and 88 are valid

    // Current CHS translation, as INITIALIZE DEVICE PARAMETERS set it.
    uint16_t heads = p.heads ? p.heads : kDefaultHeads;
    uint16_t spt = p.sectors_per_track ? p.sectors_per_track : kDefaultSectorsPerTrack;
    uint64_t cur_cyl = std::clamp<uint64_t>(p.sectors / (uint64_t{heads} * spt), 1, 65535);
    id[54] = static_cast<uint16_t>(cur_cyl);
    id[55] = heads;
    id[56] = spt;
    put32(id, 57, static_cast<uint32_t>(std::min<uint64_t>(cur_cyl * heads * spt, 0xFFFFFFFF)));
    id[59] = p.multiple ? static_cast<uint16_t>(0x0100 | p.multiple) : 0;
    put32(id, 60, static_cast<uint32_t>(std::min<uint64_t>(p.sectors, kMaxLba28Sectors)));

    // Supported modes, with the one SET FEATURES selected marked in the
    // high byte (PIIX4: multiword DMA 0-2, UDMA 0-2 = UDMA33).
    uint8_t mode_class = p.transfer_mode & 0xF8;
    uint8_t mode = p.transfer_mode & 0x07;
    id[63] = (1u << (kMaxMwdmaMode + 1)) - 1;
    if (mode_class == kXferMwdma) id[63] |= static_cast<uint16_t>(1u << (8 + mode));
    id[64] = 0x0003;  // PIO modes 3 and 4
    id[65] = 120;     // minimum multiword DMA cycle time (ns)
    id[66] = 120;
    id[67] = 120;  // minimum PIO cycle time without / with IORDY
    id[68] = 120;
    id[80] = 0x00F0;  // ATA-4 .. ATA-7
    id[81] = 0;
    // Command sets: word 82 power management + write cache; word 83 LBA48,
    // FLUSH CACHE, FLUSH CACHE EXT (bit 14 set, bit 15 clear = word valid).
    id[82] = (1 << 5) | (1 << 3);
    id[83] = 0x4000 | (1 << 13) | (1 << 12) | (1 << 10);
    id[84] = 0x4000;
    id[85] = static_cast<uint16_t>((p.write_cache ? (1 << 5) : 0) | (1 << 3));
    id[86] = (1 << 13) | (1 << 12) | (1 << 10);
    id[87] = 0x4000;
    id[88] = (1u << (kMaxUdmaMode + 1)) - 1;
    if (mode_class == kXferUdma) id[88] |= static_cast<uint16_t>(1u << (8 + mode));
    // Hardware reset result: device 0 passed diagnostics; bit 13 claims an
    // 80-conductor cable (harmless at UDMA33, which 40-wire cables carry).
    id[93] = 0x4000 | 0x2000 | 0x0001;
    put32(id, 100, static_cast<uint32_t>(p.sectors));
    put32(id, 102, static_cast<uint32_t>(p.sectors >> 32));

    // Integrity word: signature A5h, then a checksum byte that makes the sum
    // of all 512 bytes zero (mod 256).
    id[255] = 0x00A5;
    uint8_t sum = 0;
    for (unsigned i = 0; i < 255; ++i)
        sum = static_cast<uint8_t>(sum + (id[i] & 0xFF) + (id[i] >> 8));
    sum = static_cast<uint8_t>(sum + 0xA5);
    id[255] = static_cast<uint16_t>(0x00A5 | (static_cast<uint8_t>(-sum) << 8));
    return id;
}

std::array<uint8_t, 512> identify_bytes(const IdentifyBlock& block) {
    std::array<uint8_t, 512> out{};
    for (size_t i = 0; i < block.size(); ++i) {
        out[2 * i] = static_cast<uint8_t>(block[i]);
        out[2 * i + 1] = static_cast<uint8_t>(block[i] >> 8);
    }
    return out;
}

}  // namespace rv::ata
