import HVTransport
import HVWire

// Fuzz targets for the relay and IC byte formats (HVWire). Invariants: decoding never traps;
// whatever decodes re-encodes to bytes that decode to the same value.

extension FuzzTargets {
    static let wireTargets: [FuzzTarget] = [
        FuzzTarget(name: "kvp-request", summary: "KVPRequest.decode (kernel → daemon hv_kvp_msg), re-encode round trip",
                   seeds: kvpRequestSeeds, body: kvpRequestBody),
        FuzzTarget(name: "kvp-reply", summary: "KVPReply.decode for every operation, KVPRegistration messages and replies",
                   seeds: kvpReplySeeds, body: kvpReplyBody),
        FuzzTarget(name: "vss-message", summary: "VSSRequest/VSSReply/VSSRegistration decode, round trip",
                   seeds: { [VSSRequest(operation: .freeze).encode(), VSSReply(status: .ok).encode(), VSSRegistration.message()] },
                   body: vssMessageBody),
        FuzzTarget(name: "fcopy-request", summary: "FCopyRequest.decode (incl. UTF-16 names), FCopyReply, FCopyRegistration, round trip",
                   seeds: fcopyRequestSeeds, body: fcopyRequestBody),
        FuzzTarget(name: "fcopy-wire", summary: "FCopyWireMessage.decode (IC payload and body), round trip",
                   seeds: fcopyWireSeeds, body: fcopyWireBody),
        FuzzTarget(name: "ic-message", summary: "ICMessageHeader/ICMessage decode, ICVersionOffer, ICNegotiation.respond/parseResponse, ICResponder",
                   seeds: icSeeds, body: icBody),
        FuzzTarget(name: "vmbus-packet", summary: "VMBusPacketDescriptor.decode and VMBusPacket.decode (descriptor offsets/lengths)",
                   seeds: { [(try? VMBusPacket.encode(payload: [1, 2, 3, 4, 5], transactionID: 7)) ?? []] },
                   body: vmbusPacketBody),
        FuzzTarget(name: "utf16-names", summary: "ByteReader utf16String/utf16Units/utf8String/cStringBytes, writer round trip",
                   seeds: utf16Seeds, body: utf16Body),
    ]
}

// MARK: KVP

private func kvpRequestSeeds() -> [[UInt8]] {
    [
        KVPRequest.set(pool: 0, KVPExchange(key: "key", value: "value")).encode(),
        KVPRequest.get(pool: 0, key: Array("key".utf8)).encode(),
        KVPRequest.delete(pool: 0, key: Array("key".utf8)).encode(),
        KVPRequest.enumerate(pool: 3, index: 2).encode(),
        KVPRequest.setIPInfo(pool: 0, KVPIPInfo(adapterID: "ADAPTER", addressFamily: 1, ipAddresses: "10.0.0.2", subnets: "255.0.0.0")).encode(),
        KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "ADAPTER")).encode(),
    ]
}

private func kvpRequestBody(_ data: [UInt8]) -> String? {
    guard let request = try? KVPRequest.decode(data) else { return nil }
    let encoded = request.encode()
    guard encoded.count == KVPLayout.messageSize else { return "encode gave \(encoded.count) bytes" }
    guard let again = try? KVPRequest.decode(encoded) else { return "re-encoded \(request) does not decode" }
    guard again == request else { return "round trip changed \(request) into \(again)" }
    _ = request.operation
    _ = request.pool
    return nil
}

private func kvpReplySeeds() -> [[UInt8]] {
    let get = KVPRequest.get(pool: 0, key: Array("k".utf8)).encode()
    return [
        KVPReply.get(value: Array("v".utf8), echoing: get),
        KVPReply.enumerate(key: Array("k".utf8), value: Array("v".utf8), echoing: KVPRequest.enumerate(pool: 0, index: 0).encode()),
        KVPReply.status(.noMoreItems, echoing: get),
        KVPRegistration.message(), KVPRegistration.reply(),
    ]
}

private func kvpReplyBody(_ data: [UInt8]) -> String? {
    for op in KVPOperation.allCases { _ = try? KVPReply.decode(data, for: op) }
    _ = try? KVPRegistration.decodeMessage(data)
    _ = try? KVPRegistration.decodeReply(data)
    _ = try? KVPRegistration.decodeReply(data, expecting: KVPRegistration.legacy)
    return nil
}

// MARK: VSS

private func vssMessageBody(_ data: [UInt8]) -> String? {
    if let r = try? VSSRequest.decode(data) {
        let e = r.encode()
        guard e.count == VSSLayout.messageSize else { return "VSSRequest encode gave \(e.count) bytes" }
        guard (try? VSSRequest.decode(e)) == r else { return "VSSRequest round trip changed \(r)" }
    }
    if let r = try? VSSReply.decode(data) {
        guard (try? VSSReply.decode(r.encode())) == r else { return "VSSReply round trip changed \(r)" }
    }
    _ = try? VSSRegistration.decodeMessage(data)
    _ = try? VSSRegistration.decodeReply(data)
    return nil
}

// MARK: fcopy

private func fcopyRequestSeeds() -> [[UInt8]] {
    [
        FCopyRequest.start(FCopyStart(fileName: "name.txt", pathName: "/tmp/in", flags: [.overwrite], fileSize: 10)).encode(),
        FCopyRequest.start(FCopyStart(fileName: "ünï\u{1F600}.bin", pathName: "/tmp/ä", flags: [.createPath], fileSize: 0)).encode(),
        FCopyRequest.write(FCopyWrite(offset: 0, data: [1, 2, 3][...])).encode(),
        FCopyRequest.complete.encode(), FCopyRequest.cancel.encode(),
        FCopyRegistration.message(), FCopyReply.encode(.ok),
    ]
}

private func fcopyRequestBody(_ data: [UInt8]) -> String? {
    if let r = try? FCopyRequest.decode(data) {
        let e = r.encode()
        guard let again = try? FCopyRequest.decode(e) else { return "re-encoded \(r.operation) does not decode" }
        guard again == r else { return "round trip changed \(r.operation)" }
        if case .write(let w) = r, w.data.count > FCopyLayout.dataFragment { return "WRITE of \(w.data.count) bytes accepted" }
    }
    _ = try? FCopyReply.decode(data)
    _ = try? FCopyRegistration.decodeMessage(data)
    _ = try? FCopyRegistration.decodeReply(data)
    return nil
}

private func fcopyWireSeeds() -> [[UInt8]] {
    let start = FCopyWireMessage.startCopy(.init(fileName: "a.txt", pathName: "C:\\in", flags: [.overwrite], fileSize: 3))
    let write = FCopyWireMessage.writeToFile(offset: 0, data: [9, 8, 7][...])
    return [start, write, .complete, .cancel].compactMap { try? $0.encode() }
}

private func fcopyWireBody(_ data: [UInt8]) -> String? {
    for m in [try? FCopyWireMessage.decode(fromPayload: data), try? FCopyWireMessage.decode(body: data)] {
        guard let m else { continue }
        guard let e = try? m.encode() else { continue }  // e.g. names too long to re-encode are refused, not trapped
        guard let again = try? FCopyWireMessage.decode(body: e) else { return "re-encoded \(m) does not decode" }
        guard again == m else { return "round trip changed \(m) into \(again)" }
    }
    return nil
}

// MARK: IC

private func icSeeds() -> [[UInt8]] {
    let offer = ICVersionOffer(frameworkVersions: [ICVersion(1, 0), ICVersion(3, 0)], messageVersions: [ICVersion(5, 0), ICVersion(1, 1)])
    let negotiate = ICNegotiation.request(offer: offer).encode()
    let heartbeat = ICMessage.request(type: .heartbeat, frameworkVersion: ICVersion(3, 0), messageVersion: ICVersion(3, 0),
                                      body: [0, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)).encode()
    return [negotiate, heartbeat]
}

private func icBody(_ data: [UInt8]) -> String? {
    if let h = try? ICMessageHeader.decode(from: data) {
        let e = h.encode()
        guard e.count == ICMessageHeader.size, (try? ICMessageHeader.decode(from: e)) == h else { return "IC header round trip" }
    }
    if let m = try? ICMessage.decode(from: data) {
        guard (try? ICMessage.decode(from: m.encode())) != nil else { return "ICMessage re-encode does not decode" }
    }
    _ = try? ICVersionOffer.decode(fromPayload: data)
    let services: [ICServiceVersions] = [.shutdown, .timeSync, .heartbeat, .kvp, .vss, .fcopy]
    for s in services {
        if let r = try? ICNegotiation.respond(to: data, supported: s) {
            guard r.response.count == data.count else { return "negotiation answer changed the length" }
            if let chosen = r.chosen {
                guard s.framework.contains(chosen.framework), s.message.contains(chosen.message) else {
                    return "negotiation chose an unsupported version \(chosen)"
                }
                guard let parsed = try? ICNegotiation.parseResponse(r.response), parsed.chosen?.framework == chosen.framework
                else { return "host cannot read the guest's answer" }
            }
        }
    }
    _ = try? ICNegotiation.parseResponse(data)
    var copy = data
    var responder = ICResponder(versions: .heartbeat)
    _ = responder.handle(&copy) { payload, _ in
        (try? ICMessageHeader.markResponse(in: &payload, status: .ok)) != nil
    }
    var marked = data
    _ = try? ICMessageHeader.markResponse(in: &marked, status: .fail)
    _ = try? ICMessageHeader.setMessageSize(in: &marked, 0xFFFF)
    return nil
}

// MARK: VMBus packets

private func vmbusPacketBody(_ data: [UInt8]) -> String? {
    if let d = try? VMBusPacketDescriptor.decode(from: data) {
        guard (try? VMBusPacketDescriptor.decode(from: d.encode())) == d else { return "descriptor round trip" }
    }
    if let (d, payload) = try? VMBusPacket.decode(from: data) {
        guard payload.count == d.payloadLength, payload.count >= 0, Int(d.length8) * 8 <= data.count else {
            return "payload \(payload.count) does not match descriptor \(d)"
        }
    }
    return nil
}

// MARK: UTF-16 / UTF-8 fields

private func utf16Seeds() -> [[UInt8]] {
    var w = ByteWriter(size: 64)
    w.utf16String("pfad/ä\u{1F600}", at: 0, units: 32)
    return [w.bytes, Array("abc\0".utf8), [0x00, 0xD8, 0x41, 0x00, 0, 0]]
}

private func utf16Body(_ data: [UInt8]) -> String? {
    let r = ByteReader(data, structure: "fuzz")
    let units = data.count / 2
    if let s = try? r.utf16String(at: 0, units: units, field: "name") {
        guard !s.utf16.contains(0) else { return "decoded UTF-16 string contains NUL" }
        var w = ByteWriter(size: max(2, (s.utf16.count + 1) * 2))
        w.utf16String(s, at: 0, units: s.utf16.count + 1)
        guard let again = try? ByteReader(w.bytes, structure: "fuzz").utf16String(at: 0, units: s.utf16.count + 1, field: "name"),
              again == s
        else { return "UTF-16 round trip changed \(s.debugDescription)" }
    }
    _ = try? r.utf16Units(at: 0, units: units, field: "name")
    if let s = try? r.utf8String(at: 0, width: data.count, field: "name") {
        guard !s.utf8.contains(0) else { return "decoded UTF-8 string contains NUL" }
    }
    if let b = try? r.cStringBytes(at: 0, width: data.count, field: "name"), b.contains(0) { return "cStringBytes kept a NUL" }
    // Odd offsets and widths past the end must be refused, not trapped.
    _ = try? r.utf16String(at: 1, units: units, field: "name")
    _ = try? r.utf8String(at: data.count / 3, width: data.count, field: "name")
    return nil
}
