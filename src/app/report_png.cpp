#include "app/report_png.h"

#include <gd.h>
#include <gdfonts.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

namespace rv::app::report {

namespace {

struct ImageDeleter {
    void operator()(gdImage* im) const { gdImageDestroy(im); }
};

constexpr int kColours[][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                               {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

void text(gdImage* im, int x, int y, const std::string& s, int colour) {
    gdImageString(im, gdFontGetSmall(), x, y,
                  reinterpret_cast<unsigned char*>(const_cast<char*>(s.c_str())), colour);
}

}  // namespace

Result<void> write_cpu_chart(const std::vector<Record>& records, uint64_t from_ms, uint64_t to_ms,
                             const std::string& path, int width, int height) {
    if (width < 200 || height < 150 || width > 10000 || height > 10000)
        return std::unexpected(Error(fmt::format("--png size {}x{}: 200x150 to 10000x10000", width, height),
                                     0, ErrorKind::InvalidInput));
    // Points per instance: (end time, share of the interval).
    std::map<std::pair<std::string, int64_t>, std::vector<std::pair<uint64_t, double>>> series;
    std::vector<std::pair<std::string, int64_t>> order;
    uint64_t t0 = UINT64_MAX, t1 = 0;
    double ymax = 0;
    for (const auto& r : records) {
        if (r.end_ms <= from_ms || r.end_ms > to_ms || r.seconds <= 0) continue;
        auto key = std::make_pair(r.vm, r.pid);
        if (!series.contains(key)) order.push_back(key);
        double share = double(r.guest_ms + r.overhead_ms) / (r.seconds * 1000.0);
        series[key].emplace_back(r.end_ms, share);
        t0 = std::min(t0, r.end_ms - std::min<uint64_t>(r.end_ms, uint64_t(r.seconds * 1000)));
        t1 = std::max(t1, r.end_ms);
        ymax = std::max(ymax, share);
    }
    if (order.empty())
        return std::unexpected(Error("no ledger records in the range to chart", 0, ErrorKind::InvalidInput));
    if (t1 <= t0) t1 = t0 + 1000;
    ymax = std::max(0.5, std::ceil(ymax * 4.0 + 0.01) / 4.0);  // quarter cores

    std::unique_ptr<gdImage, ImageDeleter> im(gdImageCreateTrueColor(width, height));
    if (!im) return std::unexpected(Error("gdImageCreateTrueColor failed"));
    gdImage* g = im.get();
    const int white = gdImageColorAllocate(g, 255, 255, 255);
    const int black = gdImageColorAllocate(g, 0, 0, 0);
    const int grey = gdImageColorAllocate(g, 220, 220, 220);
    gdImageFilledRectangle(g, 0, 0, width - 1, height - 1, white);
    const int left = 50, right = width - 10, top = 25, bottom = height - 30;
    text(g, left, 6, "CPU share (cores: guest + VMM overhead) per ledger interval", black);
    auto x_of = [&](uint64_t t) { return left + int(double(t - t0) / double(t1 - t0) * (right - left)); };
    auto y_of = [&](double v) { return bottom - int(v / ymax * (bottom - top)); };
    for (int i = 0; i <= 4; ++i) {  // y grid and labels
        double v = ymax * i / 4;
        int y = y_of(v);
        gdImageLine(g, left, y, right, y, grey);
        text(g, 5, y - 6, fmt::format("{:.2f}", v), black);
    }
    for (int i = 0; i <= 4; ++i) {  // x ticks: UTC times
        uint64_t t = t0 + (t1 - t0) * uint64_t(i) / 4;
        int x = x_of(t);
        gdImageLine(g, x, bottom, x, bottom + 4, black);
        std::string label = utc_iso(t).substr(11, 8);
        text(g, std::clamp(x - 24, 0, width - 50), bottom + 6, label, black);
    }
    text(g, left, height - 12, fmt::format("UTC, {} to {}", utc_iso(t0), utc_iso(t1)), black);
    gdImageLine(g, left, top, left, bottom, black);
    gdImageLine(g, left, bottom, right, bottom, black);
    gdImageSetThickness(g, 2);
    for (size_t i = 0; i < order.size(); ++i) {
        const auto* c = kColours[i % std::size(kColours)];
        int colour = gdImageColorAllocate(g, c[0], c[1], c[2]);
        auto& points = series[order[i]];
        std::sort(points.begin(), points.end());
        for (size_t p = 1; p < points.size(); ++p)
            gdImageLine(g, x_of(points[p - 1].first), y_of(points[p - 1].second), x_of(points[p].first),
                        y_of(points[p].second), colour);
        if (points.size() == 1) gdImageFilledEllipse(g, x_of(points[0].first), y_of(points[0].second), 5, 5, colour);
        // Legend, top right.
        int ly = top + 4 + int(i) * 12;
        gdImageFilledRectangle(g, right - 150, ly + 3, right - 140, ly + 9, colour);
        text(g, right - 136, ly, fmt::format("{} ({})", order[i].first, order[i].second), black);
    }
    gdImageSetThickness(g, 1);

    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f)
        return std::unexpected(Error::from_errno(fmt::format("--png {}", path)).with_kind(ErrorKind::InvalidInput));
    gdImagePng(g, f);
    bool ok = std::ferror(f) == 0;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) return std::unexpected(Error::from_errno(fmt::format("writing {}", path)));
    return {};
}

}  // namespace rv::app::report
