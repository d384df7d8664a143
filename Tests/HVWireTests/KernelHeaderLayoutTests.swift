import Foundation
import Testing
@testable import HVWire

/// Compiles a C program against the machine's own `/usr/include/linux/hyperv.h` and compares
/// every size, offset and constant it prints with the Swift layout constants. No number on the
/// Swift side of this comparison is typed in by hand: each comes from `KVPLayout`, `VSSLayout`,
/// `FCopyLayout`, an enum's raw value, or the width of the Swift type a field decodes into.
@Suite("Layouts match the kernel's linux/hyperv.h")
struct KernelHeaderLayoutTests {
    static let header = "/usr/include/linux/hyperv.h"

    /// The probe. `linux/types.h` must come first (hyperv.h uses `__u8`…); `__packed` is defined
    /// in case a future uapi header uses the kernel spelling instead of `__attribute__((packed))`.
    static let probeSource = #"""
        #include <stdio.h>
        #include <stddef.h>
        #include <linux/types.h>
        #ifndef __packed
        #define __packed __attribute__((packed))
        #endif
        #include <linux/hyperv.h>

        #define SIZE(T) printf("sizeof.%s=%llu\n", #T, (unsigned long long)sizeof(struct T))
        #define OFF(T, F) printf("offsetof.%s.%s=%llu\n", #T, #F, (unsigned long long)offsetof(struct T, F))
        #define FSIZE(T, F) printf("fieldsize.%s.%s=%llu\n", #T, #F, (unsigned long long)sizeof(((struct T *)0)->F))
        #define CONST(C) printf("const.%s=%llu\n", #C, (unsigned long long)(C))

        int main(void) {
            /* struct hv_kvp_msg */
            SIZE(hv_kvp_msg);
            OFF(hv_kvp_msg, kvp_hdr.operation); FSIZE(hv_kvp_msg, kvp_hdr.operation);
            OFF(hv_kvp_msg, kvp_hdr.pool); FSIZE(hv_kvp_msg, kvp_hdr.pool);
            OFF(hv_kvp_msg, error); FSIZE(hv_kvp_msg, error);
            OFF(hv_kvp_msg, body.kvp_get.data.value_type); FSIZE(hv_kvp_msg, body.kvp_get.data.value_type);
            OFF(hv_kvp_msg, body.kvp_get.data.key_size); FSIZE(hv_kvp_msg, body.kvp_get.data.key_size);
            OFF(hv_kvp_msg, body.kvp_get.data.value_size); FSIZE(hv_kvp_msg, body.kvp_get.data.value_size);
            OFF(hv_kvp_msg, body.kvp_get.data.key); FSIZE(hv_kvp_msg, body.kvp_get.data.key);
            OFF(hv_kvp_msg, body.kvp_get.data.value); FSIZE(hv_kvp_msg, body.kvp_get.data.value);
            OFF(hv_kvp_msg, body.kvp_set.data.value_type);
            OFF(hv_kvp_msg, body.kvp_set.data.key_size);
            OFF(hv_kvp_msg, body.kvp_set.data.value_size);
            OFF(hv_kvp_msg, body.kvp_set.data.key);
            OFF(hv_kvp_msg, body.kvp_set.data.value);
            OFF(hv_kvp_msg, body.kvp_enum_data.index); FSIZE(hv_kvp_msg, body.kvp_enum_data.index);
            OFF(hv_kvp_msg, body.kvp_enum_data.data.value_type);
            OFF(hv_kvp_msg, body.kvp_enum_data.data.key_size);
            OFF(hv_kvp_msg, body.kvp_enum_data.data.value_size);
            OFF(hv_kvp_msg, body.kvp_enum_data.data.key); FSIZE(hv_kvp_msg, body.kvp_enum_data.data.key);
            OFF(hv_kvp_msg, body.kvp_enum_data.data.value); FSIZE(hv_kvp_msg, body.kvp_enum_data.data.value);
            OFF(hv_kvp_msg, body.kvp_delete.key_size); FSIZE(hv_kvp_msg, body.kvp_delete.key_size);
            OFF(hv_kvp_msg, body.kvp_delete.key); FSIZE(hv_kvp_msg, body.kvp_delete.key);
            OFF(hv_kvp_msg, body.kvp_register.version); FSIZE(hv_kvp_msg, body.kvp_register.version);
            OFF(hv_kvp_msg, body.kvp_ip_val.adapter_id); FSIZE(hv_kvp_msg, body.kvp_ip_val.adapter_id);
            OFF(hv_kvp_msg, body.kvp_ip_val.addr_family); FSIZE(hv_kvp_msg, body.kvp_ip_val.addr_family);
            OFF(hv_kvp_msg, body.kvp_ip_val.dhcp_enabled); FSIZE(hv_kvp_msg, body.kvp_ip_val.dhcp_enabled);
            OFF(hv_kvp_msg, body.kvp_ip_val.ip_addr); FSIZE(hv_kvp_msg, body.kvp_ip_val.ip_addr);
            OFF(hv_kvp_msg, body.kvp_ip_val.sub_net); FSIZE(hv_kvp_msg, body.kvp_ip_val.sub_net);
            OFF(hv_kvp_msg, body.kvp_ip_val.gate_way); FSIZE(hv_kvp_msg, body.kvp_ip_val.gate_way);
            OFF(hv_kvp_msg, body.kvp_ip_val.dns_addr); FSIZE(hv_kvp_msg, body.kvp_ip_val.dns_addr);
            CONST(HV_KVP_EXCHANGE_MAX_KEY_SIZE); CONST(HV_KVP_EXCHANGE_MAX_VALUE_SIZE);
            CONST(KVP_OP_GET); CONST(KVP_OP_SET); CONST(KVP_OP_DELETE); CONST(KVP_OP_ENUMERATE);
            CONST(KVP_OP_GET_IP_INFO); CONST(KVP_OP_SET_IP_INFO); CONST(KVP_OP_COUNT);
            CONST(KVP_OP_REGISTER); CONST(KVP_OP_REGISTER1);
            CONST(KVP_POOL_EXTERNAL); CONST(KVP_POOL_GUEST); CONST(KVP_POOL_AUTO);
            CONST(KVP_POOL_AUTO_EXTERNAL); CONST(KVP_POOL_AUTO_INTERNAL); CONST(KVP_POOL_COUNT);
            CONST(REG_SZ); CONST(REG_U32); CONST(REG_U64);
            CONST(ADDR_FAMILY_IPV4); CONST(ADDR_FAMILY_IPV6);
            CONST(MAX_ADAPTER_ID_SIZE); CONST(MAX_IP_ADDR_SIZE); CONST(MAX_GATEWAY_SIZE);

            /* struct hv_vss_msg */
            SIZE(hv_vss_msg);
            OFF(hv_vss_msg, vss_hdr.operation); FSIZE(hv_vss_msg, vss_hdr.operation);
            OFF(hv_vss_msg, error); FSIZE(hv_vss_msg, error);
            OFF(hv_vss_msg, vss_cf.flags); FSIZE(hv_vss_msg, vss_cf.flags);
            OFF(hv_vss_msg, dm_info.flags); FSIZE(hv_vss_msg, dm_info.flags);
            CONST(VSS_OP_CREATE); CONST(VSS_OP_DELETE); CONST(VSS_OP_HOT_BACKUP); CONST(VSS_OP_GET_DM_INFO);
            CONST(VSS_OP_BU_COMPLETE); CONST(VSS_OP_FREEZE); CONST(VSS_OP_THAW); CONST(VSS_OP_AUTO_RECOVER);
            CONST(VSS_OP_COUNT); CONST(VSS_OP_REGISTER); CONST(VSS_OP_REGISTER1);
            CONST(VSS_HBU_NO_AUTO_RECOVERY);

            /* file copy */
            SIZE(hv_fcopy_hdr);
            OFF(hv_fcopy_hdr, operation); FSIZE(hv_fcopy_hdr, operation);
            OFF(hv_fcopy_hdr, service_id0); OFF(hv_fcopy_hdr, service_id1);
            SIZE(hv_start_fcopy);
            OFF(hv_start_fcopy, hdr.operation);
            OFF(hv_start_fcopy, file_name); FSIZE(hv_start_fcopy, file_name);
            OFF(hv_start_fcopy, path_name); FSIZE(hv_start_fcopy, path_name);
            OFF(hv_start_fcopy, copy_flags); FSIZE(hv_start_fcopy, copy_flags);
            OFF(hv_start_fcopy, file_size); FSIZE(hv_start_fcopy, file_size);
            SIZE(hv_do_fcopy);
            OFF(hv_do_fcopy, hdr.operation);
            OFF(hv_do_fcopy, pad);
            OFF(hv_do_fcopy, offset); FSIZE(hv_do_fcopy, offset);
            OFF(hv_do_fcopy, size); FSIZE(hv_do_fcopy, size);
            OFF(hv_do_fcopy, data); FSIZE(hv_do_fcopy, data);
            CONST(START_FILE_COPY); CONST(WRITE_TO_FILE); CONST(COMPLETE_FCOPY); CONST(CANCEL_FCOPY);
            CONST(W_MAX_PATH); CONST(DATA_FRAGMENT); CONST(OVER_WRITE); CONST(CREATE_PATH);
        #ifdef FCOPY_VERSION_0
            CONST(FCOPY_VERSION_0);
        #endif
        #ifdef FCOPY_VERSION_1
            CONST(FCOPY_VERSION_1);
        #endif
        #ifdef FCOPY_CURRENT_VERSION
            CONST(FCOPY_CURRENT_VERSION);
        #endif
            /* replies of the fcopy chardev are a bare int */
            printf("sizeof.int=%llu\n", (unsigned long long)sizeof(int));

            /* status codes */
            CONST(HV_S_OK); CONST(HV_E_FAIL); CONST(HV_S_CONT); CONST(HV_ERROR_NOT_SUPPORTED);
            CONST(HV_ERROR_MACHINE_LOCKED); CONST(HV_ERROR_DEVICE_NOT_CONNECTED); CONST(HV_INVALIDARG);
            CONST(HV_GUID_NOTFOUND); CONST(HV_ERROR_ALREADY_EXISTS); CONST(HV_ERROR_DISK_FULL);
            return 0;
        }
        """#

    /// Names the probe prints only when the header defines them (the fcopy version macros
    /// belong to the chardev era and may leave the uapi header one day).
    static let optionalNames: Set<String> = [
        "const.FCOPY_VERSION_0", "const.FCOPY_VERSION_1", "const.FCOPY_CURRENT_VERSION",
    ]

    /// What the Swift side claims, keyed like the probe's output.
    static var swiftSide: [(String, Int)] {
        // Widths of the Swift types fields decode into (ByteReader.u8/u32/u64 match these).
        let u8Width = MemoryLayout<UInt8>.size
        let u32Width = MemoryLayout<UInt32>.size
        let kvpOpWidth = MemoryLayout<KVPOperation.RawValue>.size
        let kvpPoolWidth = MemoryLayout.size(ofValue: KVPRequest.enumerate(pool: 0, index: 0).pool)
        let statusWidth = MemoryLayout<HResult.RawValue>.size
        let valueTypeWidth = MemoryLayout.size(ofValue: KVPExchange(key: "", value: "").valueType)
        let familyWidth = MemoryLayout.size(ofValue: KVPIPInfo(adapterID: "").addressFamily)
        let vssOpWidth = MemoryLayout<VSSOperation.RawValue>.size
        let vssFlagsWidth = MemoryLayout.size(ofValue: VSSRequest(operation: .freeze).flags)
        let fcopyOpWidth = MemoryLayout<FCopyOperation.RawValue>.size
        let copyFlagsWidth = MemoryLayout<FCopyFlags.RawValue>.size
        let fileSizeWidth = MemoryLayout.size(ofValue: FCopyStart(fileName: "", pathName: "", flags: [], fileSize: 0).fileSize)
        let writeOffsetWidth = MemoryLayout.size(ofValue: FCopyWrite(offset: 0, data: []).offset)
        let vssDaemonOps = VSSOperation.allCases.filter { $0 != .register && $0 != .register1 }

        typealias K = KVPLayout
        typealias V = VSSLayout
        typealias F = FCopyLayout
        return [
            ("sizeof.hv_kvp_msg", K.messageSize),
            ("offsetof.hv_kvp_msg.kvp_hdr.operation", K.operation),
            ("fieldsize.hv_kvp_msg.kvp_hdr.operation", kvpOpWidth),
            ("offsetof.hv_kvp_msg.kvp_hdr.pool", K.pool),
            ("fieldsize.hv_kvp_msg.kvp_hdr.pool", kvpPoolWidth),
            ("offsetof.hv_kvp_msg.error", K.error),
            ("fieldsize.hv_kvp_msg.error", statusWidth),
            ("offsetof.hv_kvp_msg.body.kvp_get.data.value_type", K.exchangeValueType),
            ("fieldsize.hv_kvp_msg.body.kvp_get.data.value_type", valueTypeWidth),
            ("offsetof.hv_kvp_msg.body.kvp_get.data.key_size", K.exchangeKeySize),
            ("fieldsize.hv_kvp_msg.body.kvp_get.data.key_size", u32Width),
            ("offsetof.hv_kvp_msg.body.kvp_get.data.value_size", K.exchangeValueSize),
            ("fieldsize.hv_kvp_msg.body.kvp_get.data.value_size", u32Width),
            ("offsetof.hv_kvp_msg.body.kvp_get.data.key", K.exchangeKey),
            ("fieldsize.hv_kvp_msg.body.kvp_get.data.key", K.maxKeySize),
            ("offsetof.hv_kvp_msg.body.kvp_get.data.value", K.exchangeValue),
            ("fieldsize.hv_kvp_msg.body.kvp_get.data.value", K.maxValueSize),
            ("offsetof.hv_kvp_msg.body.kvp_set.data.value_type", K.exchangeValueType),
            ("offsetof.hv_kvp_msg.body.kvp_set.data.key_size", K.exchangeKeySize),
            ("offsetof.hv_kvp_msg.body.kvp_set.data.value_size", K.exchangeValueSize),
            ("offsetof.hv_kvp_msg.body.kvp_set.data.key", K.exchangeKey),
            ("offsetof.hv_kvp_msg.body.kvp_set.data.value", K.exchangeValue),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.index", K.enumerateIndex),
            ("fieldsize.hv_kvp_msg.body.kvp_enum_data.index", u32Width),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.data.value_type", K.enumerateValueType),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.data.key_size", K.enumerateKeySize),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.data.value_size", K.enumerateValueSize),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.data.key", K.enumerateKey),
            ("fieldsize.hv_kvp_msg.body.kvp_enum_data.data.key", K.maxKeySize),
            ("offsetof.hv_kvp_msg.body.kvp_enum_data.data.value", K.enumerateValue),
            ("fieldsize.hv_kvp_msg.body.kvp_enum_data.data.value", K.maxValueSize),
            ("offsetof.hv_kvp_msg.body.kvp_delete.key_size", K.deleteKeySize),
            ("fieldsize.hv_kvp_msg.body.kvp_delete.key_size", u32Width),
            ("offsetof.hv_kvp_msg.body.kvp_delete.key", K.deleteKey),
            ("fieldsize.hv_kvp_msg.body.kvp_delete.key", K.maxKeySize),
            ("offsetof.hv_kvp_msg.body.kvp_register.version", K.registerVersion),
            ("fieldsize.hv_kvp_msg.body.kvp_register.version", K.registerVersionSize),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.adapter_id", K.ipAdapterID),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.adapter_id", K.ipAdapterIDSize),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.addr_family", K.ipAddressFamily),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.addr_family", familyWidth),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.dhcp_enabled", K.ipDHCPEnabled),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.dhcp_enabled", u8Width),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.ip_addr", K.ipAddresses),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.ip_addr", K.ipAddressesSize),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.sub_net", K.ipSubnets),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.sub_net", K.ipSubnetsSize),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.gate_way", K.ipGateways),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.gate_way", K.ipGatewaysSize),
            ("offsetof.hv_kvp_msg.body.kvp_ip_val.dns_addr", K.ipDNS),
            ("fieldsize.hv_kvp_msg.body.kvp_ip_val.dns_addr", K.ipDNSSize),
            ("const.HV_KVP_EXCHANGE_MAX_KEY_SIZE", K.maxKeySize),
            ("const.HV_KVP_EXCHANGE_MAX_VALUE_SIZE", K.maxValueSize),
            ("const.KVP_OP_GET", Int(KVPOperation.get.rawValue)),
            ("const.KVP_OP_SET", Int(KVPOperation.set.rawValue)),
            ("const.KVP_OP_DELETE", Int(KVPOperation.delete.rawValue)),
            ("const.KVP_OP_ENUMERATE", Int(KVPOperation.enumerate.rawValue)),
            ("const.KVP_OP_GET_IP_INFO", Int(KVPOperation.getIPInfo.rawValue)),
            ("const.KVP_OP_SET_IP_INFO", Int(KVPOperation.setIPInfo.rawValue)),
            ("const.KVP_OP_COUNT", KVPOperation.allCases.count),
            ("const.KVP_OP_REGISTER", Int(KVPRegistration.legacy)),
            ("const.KVP_OP_REGISTER1", Int(KVPRegistration.current)),
            ("const.KVP_POOL_EXTERNAL", Int(KVPPool.external.rawValue)),
            ("const.KVP_POOL_GUEST", Int(KVPPool.guest.rawValue)),
            ("const.KVP_POOL_AUTO", Int(KVPPool.auto.rawValue)),
            ("const.KVP_POOL_AUTO_EXTERNAL", Int(KVPPool.autoExternal.rawValue)),
            ("const.KVP_POOL_AUTO_INTERNAL", Int(KVPPool.autoInternal.rawValue)),
            ("const.KVP_POOL_COUNT", KVPPool.allCases.count),
            ("const.REG_SZ", Int(KVPValueType.string)),
            ("const.REG_U32", Int(KVPValueType.u32)),
            ("const.REG_U64", Int(KVPValueType.u64)),
            ("const.ADDR_FAMILY_IPV4", Int(KVPIPInfo.familyIPv4)),
            ("const.ADDR_FAMILY_IPV6", Int(KVPIPInfo.familyIPv6)),
            // The MAX_* sizes count u16 units; our field widths are bytes.
            ("const.MAX_ADAPTER_ID_SIZE", K.ipAdapterIDSize / 2),
            ("const.MAX_IP_ADDR_SIZE", K.ipAddressesSize / 2),
            ("const.MAX_GATEWAY_SIZE", K.ipGatewaysSize / 2),

            ("sizeof.hv_vss_msg", V.messageSize),
            ("offsetof.hv_vss_msg.vss_hdr.operation", V.operation),
            ("fieldsize.hv_vss_msg.vss_hdr.operation", vssOpWidth),
            ("offsetof.hv_vss_msg.error", V.error),
            ("fieldsize.hv_vss_msg.error", statusWidth),
            ("offsetof.hv_vss_msg.vss_cf.flags", V.flags),
            ("fieldsize.hv_vss_msg.vss_cf.flags", vssFlagsWidth),
            ("offsetof.hv_vss_msg.dm_info.flags", V.flags),
            ("fieldsize.hv_vss_msg.dm_info.flags", vssFlagsWidth),
            ("const.VSS_OP_CREATE", Int(VSSOperation.create.rawValue)),
            ("const.VSS_OP_DELETE", Int(VSSOperation.delete.rawValue)),
            ("const.VSS_OP_HOT_BACKUP", Int(VSSOperation.hotBackup.rawValue)),
            ("const.VSS_OP_GET_DM_INFO", Int(VSSOperation.getDMInfo.rawValue)),
            ("const.VSS_OP_BU_COMPLETE", Int(VSSOperation.backupComplete.rawValue)),
            ("const.VSS_OP_FREEZE", Int(VSSOperation.freeze.rawValue)),
            ("const.VSS_OP_THAW", Int(VSSOperation.thaw.rawValue)),
            ("const.VSS_OP_AUTO_RECOVER", Int(VSSOperation.autoRecover.rawValue)),
            ("const.VSS_OP_COUNT", vssDaemonOps.count),
            ("const.VSS_OP_REGISTER", Int(VSSOperation.register.rawValue)),
            ("const.VSS_OP_REGISTER1", Int(VSSOperation.register1.rawValue)),
            ("const.VSS_HBU_NO_AUTO_RECOVERY", Int(vssNoAutoRecoveryFlag)),

            ("sizeof.hv_fcopy_hdr", F.headerSize),
            ("offsetof.hv_fcopy_hdr.operation", F.operation),
            ("fieldsize.hv_fcopy_hdr.operation", fcopyOpWidth),
            ("offsetof.hv_fcopy_hdr.service_id0", F.serviceID0),
            ("offsetof.hv_fcopy_hdr.service_id1", F.serviceID1),
            ("sizeof.hv_start_fcopy", F.startSize),
            ("offsetof.hv_start_fcopy.hdr.operation", F.operation),
            ("offsetof.hv_start_fcopy.file_name", F.fileName),
            ("fieldsize.hv_start_fcopy.file_name", F.nameBytes),
            ("offsetof.hv_start_fcopy.path_name", F.pathName),
            ("fieldsize.hv_start_fcopy.path_name", F.nameBytes),
            ("offsetof.hv_start_fcopy.copy_flags", F.copyFlags),
            ("fieldsize.hv_start_fcopy.copy_flags", copyFlagsWidth),
            ("offsetof.hv_start_fcopy.file_size", F.fileSize),
            ("fieldsize.hv_start_fcopy.file_size", fileSizeWidth),
            ("sizeof.hv_do_fcopy", F.writeSize),
            ("offsetof.hv_do_fcopy.hdr.operation", F.operation),
            ("offsetof.hv_do_fcopy.pad", F.writePad),
            ("offsetof.hv_do_fcopy.offset", F.writeOffset),
            ("fieldsize.hv_do_fcopy.offset", writeOffsetWidth),
            ("offsetof.hv_do_fcopy.size", F.writeLength),
            ("fieldsize.hv_do_fcopy.size", u32Width),
            ("offsetof.hv_do_fcopy.data", F.writeData),
            ("fieldsize.hv_do_fcopy.data", F.dataFragment),
            ("const.START_FILE_COPY", Int(FCopyOperation.startFileCopy.rawValue)),
            ("const.WRITE_TO_FILE", Int(FCopyOperation.writeToFile.rawValue)),
            ("const.COMPLETE_FCOPY", Int(FCopyOperation.complete.rawValue)),
            ("const.CANCEL_FCOPY", Int(FCopyOperation.cancel.rawValue)),
            ("const.W_MAX_PATH", F.maxPathUnits),
            ("const.DATA_FRAGMENT", F.dataFragment),
            ("const.OVER_WRITE", Int(FCopyFlags.overwrite.rawValue)),
            ("const.CREATE_PATH", Int(FCopyFlags.createPath.rawValue)),
            ("const.FCOPY_VERSION_0", Int(FCopyRegistration.legacy)),
            ("const.FCOPY_VERSION_1", Int(FCopyRegistration.current)),
            ("const.FCOPY_CURRENT_VERSION", Int(FCopyRegistration.current)),
            ("sizeof.int", F.replySize),

            ("const.HV_S_OK", Int(HResult.ok.rawValue)),
            ("const.HV_E_FAIL", Int(HResult.fail.rawValue)),
            ("const.HV_S_CONT", Int(HResult.noMoreItems.rawValue)),
            ("const.HV_ERROR_NOT_SUPPORTED", Int(HResult.notSupported.rawValue)),
            ("const.HV_ERROR_MACHINE_LOCKED", Int(HResult.machineLocked.rawValue)),
            ("const.HV_ERROR_DEVICE_NOT_CONNECTED", Int(HResult.deviceNotConnected.rawValue)),
            ("const.HV_INVALIDARG", Int(HResult.invalidArgument.rawValue)),
            ("const.HV_GUID_NOTFOUND", Int(HResult.guidNotFound.rawValue)),
            ("const.HV_ERROR_ALREADY_EXISTS", Int(HResult.alreadyExists.rawValue)),
            ("const.HV_ERROR_DISK_FULL", Int(HResult.diskFull.rawValue)),
        ]
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a program, returning (exit status, stdout, stderr). Both streams go to files in
    /// `dir` so a chatty child can never block on a full pipe.
    static func run(_ executable: String, _ arguments: [String], in dir: URL) throws -> (Int32, String, String) {
        let outURL = dir.appendingPathComponent("stdout-\(UUID().uuidString)")
        let errURL = dir.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, try String(contentsOf: outURL, encoding: .utf8),
                try String(contentsOf: errURL, encoding: .utf8))
    }

    /// Compiles and runs the probe; returns its `name=value` lines as a dictionary.
    static func measure() throws -> [String: Int] {
        guard FileManager.default.fileExists(atPath: header) else {
            throw ProbeFailure(description: """
                \(header) is missing: install the package linux-libc-dev \
                (apt-get install linux-libc-dev) so the layouts can be checked against the kernel's header
                """)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvwire-layout-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("probe.c")
        let binary = dir.appendingPathComponent("probe")
        try probeSource.write(to: source, atomically: true, encoding: .utf8)

        let (ccStatus, _, ccErr) = try run("/usr/bin/env", ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                                                            "-o", binary.path, source.path], in: dir)
        guard ccStatus == 0 else {
            let hint = ccStatus == 127 ? " (no C compiler: install gcc or clang so `cc` is on PATH)" : ""
            throw ProbeFailure(description: "compiling the hyperv.h probe failed with status \(ccStatus)\(hint):\n\(ccErr)")
        }
        let (status, out, err) = try run(binary.path, [], in: dir)
        guard status == 0 else { throw ProbeFailure(description: "probe exited \(status): \(err)") }

        var values: [String: Int] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let v = Int(parts[1]) else {
                throw ProbeFailure(description: "unparsable probe line: \(line)")
            }
            guard values.updateValue(v, forKey: String(parts[0])) == nil else {
                throw ProbeFailure(description: "probe printed \(parts[0]) twice")
            }
        }
        return values
    }

    @Test("every size, offset and constant we rely on equals the kernel header's")
    func layoutsMatchKernelHeader() throws {
        let measured = try Self.measure()
        let claimed = Self.swiftSide
        #expect(measured.count > 100, "the probe printed \(measured.count) values")

        var claimedNames = Set<String>()
        for (name, swiftValue) in claimed {
            #expect(claimedNames.insert(name).inserted, "\(name) listed twice on the Swift side")
            guard let kernelValue = measured[name] else {
                if !Self.optionalNames.contains(name) { Issue.record("the probe did not print \(name)") }
                continue
            }
            #expect(kernelValue == swiftValue, "\(name): kernel header says \(kernelValue), Swift says \(swiftValue)")
        }
        // Nothing measured goes unchecked.
        let unchecked = Set(measured.keys).subtracting(claimedNames)
        #expect(unchecked.isEmpty, "measured but not compared: \(unchecked.sorted())")
    }

    @Test("the probe reproduces PROTOCOL.md Appendix A's headline sizes")
    func appendixASizes() throws {
        // A guard against a probe that silently measures something else: the sizes recorded in
        // PROTOCOL.md Appendix A (gcc 12.2, linux-libc-dev 6.1) must come out of this header too.
        let measured = try Self.measure()
        #expect(measured["sizeof.hv_kvp_msg"] == 7432)
        #expect(measured["sizeof.hv_vss_msg"] == 12)
        #expect(measured["sizeof.hv_start_fcopy"] == 1088)
        #expect(measured["sizeof.hv_do_fcopy"] == 6196)
        #expect(measured["offsetof.hv_kvp_msg.body.kvp_enum_data.data.value"] == 532)
        #expect(measured["offsetof.hv_kvp_msg.body.kvp_ip_val.dns_addr"] == 5382)
    }
}
