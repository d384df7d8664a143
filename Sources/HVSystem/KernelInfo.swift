import Glibc

/// The running kernel's release (`uname -r`), e.g. `6.12.48+deb13-amd64`.
public func kernelRelease() -> String {
    var u = utsname()
    guard uname(&u) == 0 else { return "" }
    return withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
}
