/// Who receives a send.
///
/// ```swift
/// try await server.send(note, as: .notification, to: .source(userID))
/// try await server.send(note, as: .notification, to: .only([alice, bob]))
/// try await server.send(note, as: .notification, to: .everyone(except: [alice]))
/// try await server.send(quote, as: .quote, to: .channel("news"))
/// ```
public struct Recipients<SourceID: Hashable & Sendable>: Hashable, Sendable {
    enum Kind: Hashable, Sendable {
        case everyone
        case only(Set<SourceID>)
        case except(Set<SourceID>)
        case channel(String)
        case everyChannel
    }

    let kind: Kind

    /// Every open connection.
    public static var everyone: Recipients { Recipients(kind: .everyone) }

    /// Every connection of one source (all of a user's tabs, say).
    public static func source(_ source: SourceID) -> Recipients { Recipients(kind: .only([source])) }

    /// Every connection of these sources ("only").
    public static func only(_ sources: Set<SourceID>) -> Recipients { Recipients(kind: .only(sources)) }

    /// Every connection except those of these sources ("except").
    public static func everyone(except sources: Set<SourceID>) -> Recipients { Recipients(kind: .except(sources)) }

    /// Every connection subscribed to `channel`.
    public static func channel(_ channel: String) -> Recipients { Recipients(kind: .channel(channel)) }

    /// Every connection subscribed to at least one channel.
    public static var everyChannel: Recipients { Recipients(kind: .everyChannel) }

    /// Whether a connection of `source` subscribed to `channels` is one of these recipients.
    func includes(source: SourceID, channels: Set<String>) -> Bool {
        switch kind {
        case .everyone: true
        case .only(let sources): sources.contains(source)
        case .except(let sources): !sources.contains(source)
        case .channel(let channel): channels.contains(channel)
        case .everyChannel: !channels.isEmpty
        }
    }
}
