// DeviceManager and snapshots: every device's State in a section of its
// own, found again by a stable id (device_manager.h).
#include <set>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/uart16550.h"
#include "devices/virtio/pci_transport.h"
#include "snapshot/state_codec.h"
#include "vmm/device_manager.h"
#include "vmm/device_manager_entry.h"

namespace rv {

namespace {

constexpr std::string_view kPrefix = "device/";

std::string section_id(std::string_view kind, std::string_view id) {
    return kind == id ? fmt::format("{}{}", kPrefix, kind)
                      : fmt::format("{}{}/{}", kPrefix, kind, id);
}

template <typename S>
Result<void> put(snapshot::SnapshotFile& file, std::string id, const S& state) {
    return file.add(std::move(id), S::kVersion, snapshot::encode(state));
}

// Reads one device's section, remembering that it was used.
class Sections {
  public:
    explicit Sections(const snapshot::SnapshotFile& file) : m_file(file) {}

    template <typename S>
    Result<S> get(const std::string& id) {
        const snapshot::Section* s = m_file.find(id);
        if (!s)
            return input_error("the snapshot has no state for {}: it is of a VM with other devices",
                               id);
        if (s->version != S::kVersion)
            return input_error("{}: state version {}, this ringvisor reads version {}", id,
                               s->version, S::kVersion);
        m_used.insert(id);
        return snapshot::decode<S>(s->data, id);
    }
    // A device section no device took.
    Result<void> check_all_used() const {
        for (const auto& s : m_file.sections)
            if (s.id.starts_with(kPrefix) && !m_used.contains(s.id))
                return input_error("the snapshot has state for {}, which this VM does not have",
                                   s.id);
        return {};
    }

  private:
    const snapshot::SnapshotFile& m_file;
    std::set<std::string> m_used;
};

}  // namespace

Result<void> DeviceManager::save(snapshot::SnapshotFile& file) {
    RV_TRY_VOID(put(file, section_id("uart", "uart"), m_uart->save()));
    RV_TRY_VOID(put(file, section_id("i8042", "i8042"), m_i8042->save()));
    for (const auto& d : m_legacy) {
        if (auto* rtc = dynamic_cast<CmosRtc*>(d.get()))
            RV_TRY_VOID(put(file, section_id("rtc", "rtc"), rtc->save()));
        else if (auto* pm = dynamic_cast<AcpiPmDevice*>(d.get()))
            RV_TRY_VOID(put(file, section_id("acpi-pm", "acpi-pm"), pm->save()));
    }
    for (auto& e : m_entries) {
        const std::string id = section_id(e->kind, e->id);
        if (e->transport) {
            auto state = RV_TRY(with_context(e->transport->save(), id));
            RV_TRY_VOID(put(file, id, state));
        } else if (e->ide) {
            RV_TRY_VOID(put(file, id, e->ide->save()));  // completes the disk I/O in flight
        } else if (e->e1000) {
            RV_TRY_VOID(put(file, id, e->e1000->save()));
        } else {
            return make_error("{}: a {} has no snapshot state", e->id, e->kind);
        }
    }
    return put(file, section_id("pci-root", "pci-root"), m_pci->save());
}

Result<void> DeviceManager::restore(const snapshot::SnapshotFile& file) {
    Sections sections(file);
    auto uart = RV_TRY(sections.get<Uart16550::State>(section_id("uart", "uart")));
    RV_TRY_VOID(m_uart->restore(uart));
    auto i8042 = RV_TRY(sections.get<I8042::State>(section_id("i8042", "i8042")));
    RV_TRY_VOID(m_i8042->restore(i8042));
    for (const auto& d : m_legacy) {
        if (auto* rtc = dynamic_cast<CmosRtc*>(d.get())) {
            auto state = RV_TRY(sections.get<CmosRtc::State>(section_id("rtc", "rtc")));
            RV_TRY_VOID(rtc->restore(state));
        } else if (auto* pm = dynamic_cast<AcpiPmDevice*>(d.get())) {
            auto state = RV_TRY(sections.get<AcpiPmDevice::State>(section_id("acpi-pm", "acpi-pm")));
            RV_TRY_VOID(pm->restore(state));
        }
    }
    for (auto& e : m_entries) {
        const std::string id = section_id(e->kind, e->id);
        if (e->transport) {
            auto state = RV_TRY(sections.get<virtio::VirtioPciTransport::State>(id));
            RV_TRY_VOID(with_context(e->transport->restore(state), id));
        } else if (e->ide) {
            auto state = RV_TRY(sections.get<PiixIde::State>(id));
            RV_TRY_VOID(with_context(e->ide->restore(state), id));
        } else if (e->e1000) {
            auto state = RV_TRY(sections.get<E1000::State>(id));
            RV_TRY_VOID(with_context(e->e1000->restore(state), id));
        } else {
            return make_error("{}: a {} has no snapshot state", e->id, e->kind);
        }
    }
    // Last: the BARs go where the restored config spaces say.
    auto root = RV_TRY(sections.get<PciRoot::State>(section_id("pci-root", "pci-root")));
    RV_TRY_VOID(m_pci->restore(root));
    return sections.check_all_used();
}

}  // namespace rv
