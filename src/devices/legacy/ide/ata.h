// ATA register bits and command opcodes (ATA/ATAPI-6, T13/1410D), the subset
// an emulated PATA disk behind a PIIX controller needs.
#pragma once

#include <cstdint>

namespace rv::ata {

inline constexpr uint64_t kSectorSize = 512;

// Status register.
inline constexpr uint8_t kStatusErr = 0x01;
inline constexpr uint8_t kStatusDrq = 0x08;
inline constexpr uint8_t kStatusDsc = 0x10;  // "device seek complete"; obsolete, still expected
inline constexpr uint8_t kStatusDrdy = 0x40;
inline constexpr uint8_t kStatusBsy = 0x80;
inline constexpr uint8_t kStatusReady = kStatusDrdy | kStatusDsc;

// Error register.
inline constexpr uint8_t kErrDiagPassed = 0x01;  // after reset / EXECUTE DEVICE DIAGNOSTIC
inline constexpr uint8_t kErrAbrt = 0x04;
inline constexpr uint8_t kErrIdnf = 0x10;
inline constexpr uint8_t kErrUnc = 0x40;

// Device control register (control block).
inline constexpr uint8_t kCtlNien = 0x02;
inline constexpr uint8_t kCtlSrst = 0x04;
inline constexpr uint8_t kCtlHob = 0x80;

// Device register.
inline constexpr uint8_t kDevLba = 0x40;
inline constexpr uint8_t kDevSlave = 0x10;

// Command block register offsets from the command base (0x1F0 / 0x170).
namespace reg {
inline constexpr unsigned kData = 0;
inline constexpr unsigned kErrorFeature = 1;
inline constexpr unsigned kCount = 2;
inline constexpr unsigned kLbaLow = 3;
inline constexpr unsigned kLbaMid = 4;
inline constexpr unsigned kLbaHigh = 5;
inline constexpr unsigned kDevice = 6;
inline constexpr unsigned kStatusCommand = 7;
}  // namespace reg

namespace cmd {
inline constexpr uint8_t kNop = 0x00;
inline constexpr uint8_t kRecalibrate = 0x10;
inline constexpr uint8_t kReadSectors = 0x20;
inline constexpr uint8_t kReadSectorsExt = 0x24;
inline constexpr uint8_t kReadDmaExt = 0x25;
inline constexpr uint8_t kReadMultipleExt = 0x29;
inline constexpr uint8_t kWriteSectors = 0x30;
inline constexpr uint8_t kWriteSectorsExt = 0x34;
inline constexpr uint8_t kWriteDmaExt = 0x35;
inline constexpr uint8_t kWriteMultipleExt = 0x39;
inline constexpr uint8_t kReadVerify = 0x40;
inline constexpr uint8_t kReadVerifyExt = 0x42;
inline constexpr uint8_t kExecuteDiagnostic = 0x90;
inline constexpr uint8_t kInitializeParams = 0x91;
inline constexpr uint8_t kIdentifyPacket = 0xA1;
inline constexpr uint8_t kReadMultiple = 0xC4;
inline constexpr uint8_t kWriteMultiple = 0xC5;
inline constexpr uint8_t kSetMultiple = 0xC6;
inline constexpr uint8_t kReadDma = 0xC8;
inline constexpr uint8_t kWriteDma = 0xCA;
inline constexpr uint8_t kStandbyImmediate = 0xE0;
inline constexpr uint8_t kIdleImmediate = 0xE1;
inline constexpr uint8_t kStandby = 0xE2;
inline constexpr uint8_t kIdle = 0xE3;
inline constexpr uint8_t kCheckPowerMode = 0xE5;
inline constexpr uint8_t kSleep = 0xE6;
inline constexpr uint8_t kFlushCache = 0xE7;
inline constexpr uint8_t kFlushCacheExt = 0xEA;
inline constexpr uint8_t kIdentify = 0xEC;
inline constexpr uint8_t kSetFeatures = 0xEF;
}  // namespace cmd

// SET FEATURES subcommands (feature register).
namespace feature {
inline constexpr uint8_t kEnableWriteCache = 0x02;
inline constexpr uint8_t kSetTransferMode = 0x03;
inline constexpr uint8_t kDisableReadLookAhead = 0x55;
inline constexpr uint8_t kDisableRevertDefaults = 0x66;
inline constexpr uint8_t kDisableWriteCache = 0x82;
inline constexpr uint8_t kEnableReadLookAhead = 0xAA;
inline constexpr uint8_t kEnableRevertDefaults = 0xCC;
}  // namespace feature

// Transfer mode values of SET FEATURES 0x03 (sector count register).
inline constexpr uint8_t kXferPioDefault = 0x00;
inline constexpr uint8_t kXferPioDefaultNoIordy = 0x01;
inline constexpr uint8_t kXferPio = 0x08;    // | mode
inline constexpr uint8_t kXferMwdma = 0x20;  // | mode
inline constexpr uint8_t kXferUdma = 0x40;   // | mode

// CHS translation a drive reports by default (what BIOSes and libata assume).
inline constexpr uint16_t kDefaultHeads = 16;
inline constexpr uint16_t kDefaultSectorsPerTrack = 63;
inline constexpr uint16_t kMaxCylinders = 16383;
inline constexpr uint64_t kMaxLba28Sectors = 0x0FFFFFFF;
inline constexpr unsigned kMaxMultipleSectors = 16;

// What this controller and its disks support (PIIX4: UDMA33, MWDMA2, PIO4).
inline constexpr uint8_t kMaxPioMode = 4;
inline constexpr uint8_t kMaxMwdmaMode = 2;
inline constexpr uint8_t kMaxUdmaMode = 2;

}  // namespace rv::ata
