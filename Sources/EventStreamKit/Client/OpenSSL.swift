#if canImport(Glibc)
import Glibc

/// The system's OpenSSL (`libssl.so.3`, else `libssl.so.1.1`), loaded with `dlopen` the
/// first time an `https` stream opens, so that the package depends on nothing at build time.
/// FoundationNetworking links the same library (through libcurl), so it is on every Linux
/// system where Swift's Foundation works.
///
/// Only the calls the client needs, each looked up by name. Constants are OpenSSL's ABI,
/// stable across 1.1 and 3.x (`ssl.h`, `bio.h`).
struct OpenSSL: Sendable {
    typealias SSLPointer = OpaquePointer
    typealias BIOPointer = OpaquePointer

    static let errorWantRead: Int32 = 2
    static let errorWantWrite: Int32 = 3
    static let errorSyscall: Int32 = 5
    static let errorZeroReturn: Int32 = 6

    let clientMethod: @convention(c) () -> OpaquePointer?
    let contextNew: @convention(c) (OpaquePointer?) -> OpaquePointer?
    let contextControl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    /// A function in 3.x, a macro over `SSL_CTX_ctrl` in 1.1.
    let contextSetOptions: (@convention(c) (OpaquePointer?, UInt64) -> UInt64)?
    let contextSetVerify: @convention(c) (OpaquePointer?, Int32, OpaquePointer?) -> Void
    let contextSetDefaultVerifyPaths: @convention(c) (OpaquePointer?) -> Int32
    let contextSetCipherList: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let new: @convention(c) (OpaquePointer?) -> SSLPointer?
    let free: @convention(c) (SSLPointer?) -> Void
    let control: @convention(c) (SSLPointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let setHost: @convention(c) (SSLPointer?, UnsafePointer<CChar>?) -> Int32
    let getParameters: @convention(c) (SSLPointer?) -> OpaquePointer?
    let parametersSetIP: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
    let setALPN: @convention(c) (SSLPointer?, UnsafePointer<UInt8>?, UInt32) -> Int32
    let setBIO: @convention(c) (SSLPointer?, BIOPointer?, BIOPointer?) -> Void
    let connect: @convention(c) (SSLPointer?) -> Int32
    let read: @convention(c) (SSLPointer?, UnsafeMutableRawPointer?, Int32) -> Int32
    let write: @convention(c) (SSLPointer?, UnsafeRawPointer?, Int32) -> Int32
    let getError: @convention(c) (SSLPointer?, Int32) -> Int32
    let getVerifyResult: @convention(c) (SSLPointer?) -> Int
    let verifyErrorString: @convention(c) (Int) -> UnsafePointer<CChar>?
    let memoryMethod: @convention(c) () -> OpaquePointer?
    let bioNew: @convention(c) (OpaquePointer?) -> BIOPointer?
    let bioRead: @convention(c) (BIOPointer?, UnsafeMutableRawPointer?, Int32) -> Int32
    let bioWrite: @convention(c) (BIOPointer?, UnsafeRawPointer?, Int32) -> Int32
    let bioControl: @convention(c) (BIOPointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let bioPending: @convention(c) (BIOPointer?) -> Int
    let errorGet: @convention(c) () -> UInt
    let errorClear: @convention(c) () -> Void
    let errorString: @convention(c) (UInt, UnsafeMutablePointer<CChar>?, Int) -> Void

    /// The library, or why it could not be loaded; looked up once per process.
    static let shared: Result<OpenSSL, TLSError> = Result { () throws(TLSError) in try OpenSSL() }

    private init() throws(TLSError) {
        let names = ["libssl.so.3", "libssl.so.1.1", "libssl.so"]
        guard let handle = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_LOCAL) }).first else {
            throw TLSError(.libraryUnavailable, "https needs the system's OpenSSL (\(names.joined(separator: ", "))), which could not be loaded")
        }
        // The handle is never closed: the functions are used for the life of the process.
        func symbol<F>(_ name: String, as type: F.Type) throws(TLSError) -> F {
            guard let address = dlsym(handle, name) else {
                throw TLSError(.libraryUnavailable, "the system's OpenSSL has no \(name)")
            }
            return unsafeBitCast(address, to: type)
        }
        func optionalSymbol<F>(_ name: String, as type: F.Type) -> F? {
            dlsym(handle, name).map { unsafeBitCast($0, to: type) }
        }
        clientMethod = try symbol("TLS_client_method", as: (@convention(c) () -> OpaquePointer?).self)
        contextNew = try symbol("SSL_CTX_new", as: (@convention(c) (OpaquePointer?) -> OpaquePointer?).self)
        contextControl = try symbol("SSL_CTX_ctrl", as: (@convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int).self)
        contextSetOptions = optionalSymbol("SSL_CTX_set_options", as: (@convention(c) (OpaquePointer?, UInt64) -> UInt64).self)
        contextSetVerify = try symbol("SSL_CTX_set_verify", as: (@convention(c) (OpaquePointer?, Int32, OpaquePointer?) -> Void).self)
        contextSetDefaultVerifyPaths = try symbol("SSL_CTX_set_default_verify_paths", as: (@convention(c) (OpaquePointer?) -> Int32).self)
        contextSetCipherList = try symbol("SSL_CTX_set_cipher_list", as: (@convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32).self)
        new = try symbol("SSL_new", as: (@convention(c) (OpaquePointer?) -> SSLPointer?).self)
        free = try symbol("SSL_free", as: (@convention(c) (SSLPointer?) -> Void).self)
        control = try symbol("SSL_ctrl", as: (@convention(c) (SSLPointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int).self)
        setHost = try symbol("SSL_set1_host", as: (@convention(c) (SSLPointer?, UnsafePointer<CChar>?) -> Int32).self)
        getParameters = try symbol("SSL_get0_param", as: (@convention(c) (SSLPointer?) -> OpaquePointer?).self)
        parametersSetIP = try symbol("X509_VERIFY_PARAM_set1_ip_asc", as: (@convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32).self)
        setALPN = try symbol("SSL_set_alpn_protos", as: (@convention(c) (SSLPointer?, UnsafePointer<UInt8>?, UInt32) -> Int32).self)
        setBIO = try symbol("SSL_set_bio", as: (@convention(c) (SSLPointer?, BIOPointer?, BIOPointer?) -> Void).self)
        connect = try symbol("SSL_connect", as: (@convention(c) (SSLPointer?) -> Int32).self)
        read = try symbol("SSL_read", as: (@convention(c) (SSLPointer?, UnsafeMutableRawPointer?, Int32) -> Int32).self)
        write = try symbol("SSL_write", as: (@convention(c) (SSLPointer?, UnsafeRawPointer?, Int32) -> Int32).self)
        getError = try symbol("SSL_get_error", as: (@convention(c) (SSLPointer?, Int32) -> Int32).self)
        getVerifyResult = try symbol("SSL_get_verify_result", as: (@convention(c) (SSLPointer?) -> Int).self)
        verifyErrorString = try symbol("X509_verify_cert_error_string", as: (@convention(c) (Int) -> UnsafePointer<CChar>?).self)
        memoryMethod = try symbol("BIO_s_mem", as: (@convention(c) () -> OpaquePointer?).self)
        bioNew = try symbol("BIO_new", as: (@convention(c) (OpaquePointer?) -> BIOPointer?).self)
        bioRead = try symbol("BIO_read", as: (@convention(c) (BIOPointer?, UnsafeMutableRawPointer?, Int32) -> Int32).self)
        bioWrite = try symbol("BIO_write", as: (@convention(c) (BIOPointer?, UnsafeRawPointer?, Int32) -> Int32).self)
        bioControl = try symbol("BIO_ctrl", as: (@convention(c) (BIOPointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int).self)
        bioPending = try symbol("BIO_ctrl_pending", as: (@convention(c) (BIOPointer?) -> Int).self)
        errorGet = try symbol("ERR_get_error", as: (@convention(c) () -> UInt).self)
        errorClear = try symbol("ERR_clear_error", as: (@convention(c) () -> Void).self)
        errorString = try symbol("ERR_error_string_n", as: (@convention(c) (UInt, UnsafeMutablePointer<CChar>?, Int) -> Void).self)
    }

    /// The first error on this thread's OpenSSL error queue, as text, and the queue emptied.
    func takeErrors() -> String? {
        var first: String?
        while case let code = errorGet(), code != 0 {
            if first == nil {
                var text = [CChar](repeating: 0, count: 256)
                errorString(code, &text, text.count)
                first = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return first
    }
}

extension OpenSSL {
    /// One client context for the process: peer verification against the system's trust
    /// store (OpenSSL's default paths, which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`),
    /// TLS 1.2 or later with ECDHE and AEAD suites and elliptic-curve groups only, no
    /// renegotiation, no compression, and a close without
    /// `close_notify` read as the end of the stream (an event stream's framing, and the
    /// parser's rule that an unfinished event is dropped, make truncation harmless).
    static let clientContext: Result<Context, TLSError> = Result { () throws(TLSError) in
        let library = try shared.get()
        guard let context = library.contextNew(library.clientMethod()) else {
            throw TLSError(.libraryUnavailable, "SSL_CTX_new failed: \(library.takeErrors() ?? "no reason given")")
        }
        let minimumVersion = 0x0303  // TLS1_2_VERSION
        _ = library.contextControl(context, 123, minimumVersion, nil)  // SSL_CTX_set_min_proto_version
        // SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS
        _ = library.contextControl(context, 33, 0x1 | 0x2 | 0x10, nil)  // SSL_CTX_set_mode
        // SSL_OP_IGNORE_UNEXPECTED_EOF (3.x only; 1.1 reports it as SSL_ERROR_SYSCALL, handled
        // the same) | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
        let options: UInt64 = 1 << 7 | 1 << 17 | 1 << 30
        if let setOptions = library.contextSetOptions {
            _ = setOptions(context, options)
        } else {
            _ = library.contextControl(context, 32, Int(options & 0x7FFF_FFFF), nil)  // SSL_CTRL_OPTIONS
        }
        // TLS 1.2 suites: ECDHE key exchange with AEAD only. Without this a server could pick
        // finite-field DHE with a huge group (an 8192-bit one cost the client 0.45 s of CPU per
        // handshake, on every reconnection), static RSA (no forward secrecy) or CBC with SHA-1.
        // TLS 1.3's suites are all AEAD and stay as they are.
        guard library.contextSetCipherList(context, "ECDHE+AESGCM:ECDHE+CHACHA20") == 1 else {
            throw TLSError(.libraryUnavailable, "the TLS 1.2 cipher list was refused: \(library.takeErrors() ?? "no reason given")")
        }
        // Key exchange groups (TLS 1.3 too): elliptic curves only, no finite-field groups.
        guard "X25519:P-256:P-384".withCString({ library.contextControl(context, 92, 0, UnsafeMutableRawPointer(mutating: $0)) }) == 1 else {  // SSL_CTX_set1_groups_list
            throw TLSError(.libraryUnavailable, "the key exchange groups were refused: \(library.takeErrors() ?? "no reason given")")
        }
        library.contextSetVerify(context, 0x01, nil)  // SSL_VERIFY_PEER
        guard library.contextSetDefaultVerifyPaths(context) == 1 else {
            throw TLSError(.libraryUnavailable, "the system's trusted certificates could not be loaded: \(library.takeErrors() ?? "no reason given")")
        }
        return Context(pointer: context)
    }

    /// A configured `SSL_CTX`.
    ///
    /// `@unchecked Sendable`: the context is configured once, in ``clientContext``'s
    /// initializer, before any other thread can see it, and never changed afterwards;
    /// OpenSSL allows one unchanging `SSL_CTX` to create `SSL` objects on many threads at once
    /// (its reference count is atomic). It is never freed.
    struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }
}
#endif
