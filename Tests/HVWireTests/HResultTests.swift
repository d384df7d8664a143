import Testing
@testable import HVWire

@Suite("HResult")
struct HResultTests {
    @Test("every named status: value, name and description", arguments: [
        (HResult.ok, "S_OK", "0x00000000 (S_OK)"),
        (HResult.fail, "E_FAIL", "0x80004005 (E_FAIL)"),
        (HResult.noMoreItems, "HV_S_CONT", "0x80070103 (HV_S_CONT)"),
        (HResult.notSupported, "ERROR_NOT_SUPPORTED", "0x80070032 (ERROR_NOT_SUPPORTED)"),
        (HResult.machineLocked, "ERROR_MACHINE_LOCKED", "0x800704F7 (ERROR_MACHINE_LOCKED)"),
        (HResult.deviceNotConnected, "ERROR_DEVICE_NOT_CONNECTED", "0x8007048F (ERROR_DEVICE_NOT_CONNECTED)"),
        (HResult.invalidArgument, "E_INVALIDARG", "0x80070057 (E_INVALIDARG)"),
        (HResult.guidNotFound, "WBEM_E_NOT_FOUND", "0x80041002 (WBEM_E_NOT_FOUND)"),
        (HResult.alreadyExists, "ERROR_FILE_EXISTS", "0x80070050 (ERROR_FILE_EXISTS)"),
        (HResult.diskFull, "ERROR_DISK_FULL", "0x80070070 (ERROR_DISK_FULL)"),
    ])
    func named(_ status: HResult, _ name: String, _ description: String) {
        #expect(status.name == name)
        #expect(status.description == description)
        #expect("\(status)" == description)
        #expect(status.isSuccess == (status == .ok))
        #expect(HResult(rawValue: status.rawValue) == status)
    }

    @Test("unknown values print as eight upper-case hex digits without a name")
    func unnamed() {
        #expect(HResult(0xABC).name == nil)
        #expect(HResult(0xABC).description == "0x00000ABC")
        #expect(HResult(0xFFFF_FFFF).description == "0xFFFFFFFF")
        #expect(HResult(1).description == "0x00000001")
        #expect(!HResult(1).isSuccess)
    }

    @Test("signed view matches the kernel's int error field")
    func signed() {
        #expect(HResult.fail.signed == -2_147_467_259)
        #expect(HResult.ok.signed == 0)
        #expect(HResult(0x7FFF_FFFF).signed == Int32.max)
        #expect(HResult(0xFFFF_FFFF).signed == -1)
    }
}
