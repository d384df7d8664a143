import HVServiceKit

extension KVPService: ServiceStatusReporting {
    /// KVP facts for `hvguestctl status`: what the host said about itself.
    public func statusDetails() -> [String: String] {
        var d: [String: String] = [:]
        if let v = integrationServicesVersion { d["host_integration_services_version"] = v }
        return d
    }
}
