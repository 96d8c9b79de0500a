#include "arch/x86_64/kernel_payload.h"

#include <elf.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace rv::x86 {

std::string_view compression_name(Compression c) {
    switch (c) {
        case Compression::Gzip: return "gzip";
        case Compression::Xz: return "xz";
        case Compression::Zstd: return "zstd";
        case Compression::Unknown: break;
    }
    return "unknown";
}

Result<Payload> find_payload(const BzImage& image, std::span<const uint8_t> file) {
    if (image.version < 0x0208) return make_error("boot protocol {:#x} has no payload fields", image.version);
    SetupHeader hdr{};
    // SAFETY: copying the header bytes the parser already bounds-checked into
    // a trivially copyable wire struct.
    std::memcpy(&hdr, image.setup_header.data(), std::min(sizeof hdr, image.setup_header.size()));
    uint64_t start = image.kernel_offset + uint64_t{hdr.payload_offset};
    uint64_t len = hdr.payload_length;
    if (len < 8 || start > file.size() || len > file.size() - start)
        return make_error("payload {:#x}+{:#x} lies outside the {}-byte image", start, len, file.size());
    Payload p{file.subspan(start, len), Compression::Unknown};
    auto magic = [&](std::initializer_list<uint8_t> m) {
        return std::equal(m.begin(), m.end(), p.bytes.begin());
    };
    if (magic({0x1f, 0x8b}))
        p.compression = Compression::Gzip;
    else if (magic({0xfd, '7', 'z', 'X', 'Z', 0x00}))
        p.compression = Compression::Xz;
    else if (magic({0x28, 0xb5, 0x2f, 0xfd}))
        p.compression = Compression::Zstd;
    return p;
}

namespace {

// The kernel build appends the decompressed size (little endian, 4 bytes).
uint64_t appended_size(std::span<const uint8_t> bytes) {
    uint32_t size;
    std::memcpy(&size, bytes.data() + bytes.size() - 4, 4);
    return size;
}

Result<std::vector<uint8_t>> decompress_xz(std::span<const uint8_t> in, uint64_t max_output) {
    lzma_stream strm = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK) return make_error("xz: cannot init decoder");
    std::vector<uint8_t> out(std::min<uint64_t>(appended_size(in) + 4096, max_output));
    strm.next_in = in.data();
    strm.avail_in = in.size();
    strm.next_out = out.data();
    strm.avail_out = out.size();
    lzma_ret ret = lzma_code(&strm, LZMA_FINISH);
    size_t produced = out.size() - strm.avail_out;
    lzma_end(&strm);
    // The stream ends before the 4 appended size bytes; anything else is corrupt.
    if (ret != LZMA_STREAM_END) return make_error("xz: corrupt or oversized payload (code {})", int(ret));
    out.resize(produced);
    return out;
}

Result<std::vector<uint8_t>> decompress_zstd(std::span<const uint8_t> in, uint64_t max_output) {
    std::vector<uint8_t> out(std::min<uint64_t>(appended_size(in) + 4096, max_output));
    // The appended size is not part of the frame: decompress the frame only.
    size_t frame = ZSTD_findFrameCompressedSize(in.data(), in.size());
    if (ZSTD_isError(frame)) return make_error("zstd: {}", ZSTD_getErrorName(frame));
    size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), frame);
    if (ZSTD_isError(n)) return make_error("zstd: {}", ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

Result<std::vector<uint8_t>> decompress_gzip(std::span<const uint8_t> in, uint64_t max_output) {
    std::vector<uint8_t> out(std::min<uint64_t>(appended_size(in) + 4096, max_output));
    z_stream strm{};
    if (inflateInit2(&strm, 16 + MAX_WBITS) != Z_OK) return make_error("gzip: cannot init decoder");
    strm.next_in = const_cast<Bytef*>(in.data());
    strm.avail_in = static_cast<uInt>(in.size());
    strm.next_out = out.data();
    strm.avail_out = static_cast<uInt>(out.size());
    int ret = inflate(&strm, Z_FINISH);
    size_t produced = out.size() - strm.avail_out;
    inflateEnd(&strm);
    if (ret != Z_STREAM_END) return make_error("gzip: corrupt or oversized payload (code {})", ret);
    out.resize(produced);
    return out;
}

}  // namespace

Result<std::vector<uint8_t>> decompress(const Payload& payload, uint64_t max_output) {
    switch (payload.compression) {
        case Compression::Xz: return decompress_xz(payload.bytes, max_output);
        case Compression::Zstd: return decompress_zstd(payload.bytes, max_output);
        case Compression::Gzip: return decompress_gzip(payload.bytes, max_output);
        case Compression::Unknown: break;
    }
    return make_error("kernel payload compression not supported (only gzip, xz, zstd)");
}

Result<ElfKernel> parse_elf_kernel(std::span<const uint8_t> file, uint64_t file_size) {
    Elf64_Ehdr eh;
    if (file.size() < sizeof eh) return make_error("ELF: file too short");
    // SAFETY: Elf64_Ehdr is a plain wire struct; any bytes are a valid value.
    std::memcpy(&eh, file.data(), sizeof eh);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return make_error("not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
        return make_error("ELF: not an x86-64 executable");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
        eh.e_phoff > file.size() || uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > file.size() - eh.e_phoff)
        return make_error("ELF: bad program header table");
    ElfKernel k;
    k.entry = eh.e_entry;
    k.lowest = UINT64_MAX;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD) continue;
        uint64_t end;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > file_size ||
            ph.p_filesz > file_size - ph.p_offset ||
            __builtin_add_overflow(ph.p_paddr, ph.p_memsz, &end))
            return make_error("ELF: segment {} out of bounds", i);
        k.segments.push_back({ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz});
        k.lowest = std::min(k.lowest, ph.p_paddr);
        k.end = std::max(k.end, end);
    }
    if (k.segments.empty()) return make_error("ELF: no loadable segments");
    bool entry_inside = false;
    for (const auto& s : k.segments) entry_inside |= k.entry >= s.paddr && k.entry < s.paddr + s.memsz;
    if (!entry_inside) return make_error("ELF: entry {:#x} is not a physical address in a segment", k.entry);
    return k;
}

}  // namespace rv::x86
