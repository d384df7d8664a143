import HVDaemon
import HVServiceKit
import HVSystem
import Logging
import Testing

@Suite struct LogLevelSettingTests {
    /// Loggers made before a change follow the shared level; a logger given its own level
    /// keeps it.
    @Test func copiesFollowTheSharedLevelUnlessTheySetTheirOwn() {
        let lines = Locked<[String]>([])
        let setting = LogLevelSetting(.info)
        let handler = StderrLogHandler(label: "t", level: .critical, levelSetting: setting, timestamps: false, gate: LogGate(),
                                       write: { line in lines.withLock { $0.append(line) } })
        let early = Logger(label: "t", factory: { _ in handler })
        var own = early
        own.logLevel = .error
        #expect(early.logLevel == .info)
        early.debug("hidden")
        setting.set(.debug)
        #expect(early.logLevel == .debug)
        #expect(own.logLevel == .error)
        early.debug("shown")
        own.warning("own level hides this")
        setting.set(.warning)
        early.info("hidden again")
        #expect(setting.level == .warning)
        for level in [Logger.Level.trace, .debug, .info, .notice, .warning, .error, .critical] {
            setting.set(level)
            #expect(setting.level == level)
        }
        // Without a setting the handler keeps the level it was made with.
        #expect(StderrLogHandler(label: "t", level: .notice, timestamps: false, write: { _ in }).logLevel == .notice)
        let text = lines.withLock { $0 }.joined(separator: "\n")
        #expect(text.contains("shown"))
        #expect(!text.contains("hidden"))
        #expect(!text.contains("own level hides this"))
    }
}
