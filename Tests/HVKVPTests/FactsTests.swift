import HVSystem
import Testing

@testable import HVKVP

@Suite struct OSReleaseTests {
    @Test func parsesQuotesEscapesAndComments() {
        let text = """
            # comment
            NAME="Debian GNU/Linux"
            VERSION_ID="12"
            PRETTY_NAME='Debian "bookworm"'
            ID=debian
            ESCAPED="a \\"quoted\\" \\$HOME \\\\ back"
              INDENTED=yes
            BROKEN="never closed
            NOEQUALS
            HOME_URL="https://www.debian.org/" # trailing comment
            """
        let fields = parseOSRelease(text)
        #expect(fields["NAME"] == "Debian GNU/Linux")
        #expect(fields["VERSION_ID"] == "12")
        #expect(fields["PRETTY_NAME"] == "Debian \"bookworm\"")
        #expect(fields["ID"] == "debian")
        #expect(fields["ESCAPED"] == "a \"quoted\" $HOME \\ back")
        #expect(fields["INDENTED"] == "yes")
        #expect(fields["BROKEN"] == nil)
        #expect(fields["NOEQUALS"] == nil)
        #expect(fields["HOME_URL"] == "https://www.debian.org/")
    }

    @Test func osDescriptionFallsBackLikeTheReference() {
        #expect(
            OSDescription.derive(osRelease: "NAME=Ubuntu\nVERSION_ID=\"22.04\"\n", legacyRelease: "x", kernelName: "Linux")
                == OSDescription(name: "Ubuntu", majorVersion: "22.04", minorVersion: ""))
        #expect(
            OSDescription.derive(osRelease: nil, legacyRelease: "SUSE Linux Enterprise Server\n11\n4\n", kernelName: "Linux")
                == OSDescription(name: "SUSE Linux Enterprise Server", majorVersion: "11", minorVersion: "4"))
        #expect(
            OSDescription.derive(osRelease: "ID=x\n", legacyRelease: nil, kernelName: "Linux")
                == OSDescription(name: "Linux", majorVersion: "", minorVersion: ""))
    }
}

@Suite struct ConfigurationTests {
    @Test func globPatternsAndDefaults() {
        #expect(globMatch("docker*", "docker0"))
        #expect(globMatch("br-*", "br-1a2b"))
        #expect(!globMatch("br-*", "bridge0"))
        #expect(globMatch("eth[0-3]", "eth2"))
        #expect(!globMatch("eth[!0-3]", "eth2"))
        #expect(globMatch("e?h0", "eth0"))
        #expect(!globMatch("eth0", "eth01"))
        let config = KVPConfiguration()
        #expect(config.reports(interface: "eth0"))
        #expect(!config.reports(interface: "lo"))
        #expect(!config.reports(interface: "veth12ab"))
        #expect(!config.reports(interface: "virbr0"))
        var only = config
        only.includeInterfaces = ["eth*"]
        #expect(only.reports(interface: "eth1"))
        #expect(!only.reports(interface: "enP1s1"))
    }

    @Test func readsTheSectionAndNamesBadKeys() throws {
        let section = ConfigSectionFixture.make([
            "fsync": .bool(true), "max_records_per_pool": .integer(500), "ip_config_backend": .string("dry-run"),
            "exclude_interfaces": .array([.string("lo"), .string("tap*")]),
        ])
        let config = try KVPConfiguration(section: section)
        #expect(config.synchronousWrites)
        #expect(config.maxRecordsPerPool == 500)
        #expect(config.ipConfigBackend == .dryRun)
        #expect(config.excludeInterfaces == ["lo", "tap*"])
        #expect(throws: (any Error).self) { try KVPConfiguration(section: ConfigSectionFixture.make(["fsynk": .bool(true)])) }
        #expect(throws: (any Error).self) {
            try KVPConfiguration(section: ConfigSectionFixture.make(["max_records_per_pool": .integer(0)]))
        }
        #expect(throws: (any Error).self) {
            try KVPConfiguration(section: ConfigSectionFixture.make(["ip_config_backend": .string("nmcli")]))
        }
    }
}

import HVServiceKit

enum ConfigSectionFixture {
    static func make(_ values: [String: ConfigValue]) -> ConfigSection {
        ConfigSection(name: "kvp", values: values, locate: { _ in ConfigLocation(file: "test.toml", line: 1) })
    }
}
