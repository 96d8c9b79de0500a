// Anchors the IrqLine vtable in rv_devices.
#include "devices/interrupt.h"
