// HVWire: every byte format hvguest speaks, as value types with `decode`/`encode`.
// Pure: no I/O, no Foundation. Layouts mirror include/uapi/linux/hyperv.h (PROTOCOL.md);
// Tests/HVWireTests checks them against the machine's own header.
