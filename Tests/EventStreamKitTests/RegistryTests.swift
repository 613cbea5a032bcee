@testable import EventStreamKit
import Testing

private typealias Table = Registry<String, String>

private func id(_ value: UInt64) -> ConnectionID { ConnectionID(value: value) }

/// The registry against a plain list of (connection, source, channels) after every step:
/// whatever the order of connects and disconnects, every index answers as the list does.
@Suite("Registry")
struct RegistryTests {
    /// The model: connections in the order they registered.
    private struct Model {
        var rows: [(id: ConnectionID, source: String, channels: Set<String>)] = []
        var lastEventID: [String: String] = [:]

        func ids(_ recipients: Recipients<String>) -> Set<ConnectionID> {
            Set(rows.filter { recipients.includes(source: $0.source, channels: $0.channels) }.map(\.id))
        }
    }

    private static let sources = ["alice", "bob", "carol", "dave"]
    private static let channels = ["news", "sport", "weather"]

    private func check(_ table: Table, against model: Model, sourceLabel: String) {
        #expect(table.count == model.rows.count, "\(sourceLabel)")
        #expect(table.members.count == model.rows.count)
        #expect(table.owners.count == model.rows.count)
        for row in model.rows {
            #expect(table[row.id] == "member \(row.id.value)", "\(sourceLabel): member of \(row.id)")
            #expect(table.records[row.id].map { table.owners[$0.slot] } == row.id, "\(sourceLabel): slot of \(row.id)")
        }
        var kinds: [Recipients<String>] = [.everyone, .everyChannel]
        for source in Self.sources {
            kinds += [.source(source), .everyone(except: [source])]
            #expect(table.ids(source: source) == model.rows.filter { $0.source == source }.map(\.id), "\(sourceLabel): \(source)'s connections, oldest first")
            #expect(table.count(source: source) == model.rows.filter { $0.source == source }.count)
        }
        kinds.append(.only(["alice", "carol"]))
        for channel in Self.channels {
            kinds.append(.channel(channel))
            #expect(table.count(channel: channel) == model.rows.filter { $0.channels.contains(channel) }.count)
            #expect(table.lastEventID(channel: channel) == model.lastEventID[channel], "\(sourceLabel): last event of \(channel)")
        }
        for recipients in kinds {
            let ids = table.ids(recipients)
            #expect(ids.count == Set(ids).count, "\(sourceLabel): \(recipients) reaches each connection once")
            #expect(Set(ids) == model.ids(recipients), "\(sourceLabel): \(recipients)")
            var visited: [ConnectionID] = []
            table.forEach(recipients) { id, member in
                visited.append(id)
                #expect(member == "member \(id.value)")
            }
            #expect(visited.count == Set(visited).count && Set(visited) == model.ids(recipients), "\(sourceLabel): forEach \(recipients)")
        }
        #expect(Set(table.sources) == Set(model.rows.map(\.source)))
        #expect(table.sourceCount == Set(model.rows.map(\.source)).count)
        #expect(Set(table.channels) == Set(model.rows.flatMap(\.channels)))
    }

    @Test("random connects, disconnects and channel sends: every index agrees with a plain list", arguments: [1, 2, 3] as [UInt64])
    func indexesStayConsistent(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var table = Table()
        var model = Model()
        var next: UInt64 = 0
        for step in 0..<600 {
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll < 5 || model.rows.isEmpty {
                next += 1
                let source = Self.sources.randomElement(using: &generator)!
                let channels = Set(Self.channels.filter { _ in Bool.random(using: &generator) })
                table.insert("member \(next)", id: id(next), source: source, channels: channels)
                model.rows.append((id(next), source, channels))
            } else if roll < 9 {
                let index = Int.random(in: 0..<model.rows.count, using: &generator)
                let row = model.rows.remove(at: index)
                let removed = table.remove(row.id)
                #expect(removed?.member == "member \(row.id.value)")
                #expect(removed?.record.source == row.source)
                for channel in row.channels where !model.rows.contains(where: { $0.channels.contains(channel) }) {
                    model.lastEventID[channel] = nil
                }
            } else {
                let eventID = "e\(step)"
                let recipients: Recipients<String> = Bool.random(using: &generator) ? .channel(Self.channels.randomElement(using: &generator)!) : .everyChannel
                table.noteSent(eventID, to: recipients)
                for channel in Self.channels where model.rows.contains(where: { $0.channels.contains(channel) }) {
                    if recipients.includes(source: "", channels: [channel]) { model.lastEventID[channel] = eventID }
                }
            }
            check(table, against: model, sourceLabel: "seed \(seed) step \(step)")
        }
    }

    @Test func removingAnUnknownConnectionChangesNothing() {
        var table = Table()
        table.insert("member 1", id: id(1), source: "alice", channels: ["news"])
        #expect(table.remove(id(2)) == nil)
        #expect(table.count == 1)
        #expect(table.ids(channel: "news") == [id(1)])
        #expect(table.remove(id(1))?.member == "member 1")
        #expect(table.remove(id(1)) == nil)
        #expect(table.isEmpty && table.members.isEmpty && table.sources.isEmpty && table.channels.isEmpty)
    }

    @Test("a channel's last event ID is noted only while it has subscribers, and forgotten with its last one")
    func lastEventIDPerChannel() {
        var table = Table()
        table.noteSent("e1", to: .channel("news"))
        #expect(table.lastEventID(channel: "news") == nil)
        table.insert("member 1", id: id(1), source: "alice", channels: ["news"])
        table.noteSent("e2", to: .channel("news"))
        table.noteSent("e3", to: .everyone)
        #expect(table.lastEventID(channel: "news") == "e2")
        table.noteSent("e4", to: .everyChannel)
        #expect(table.lastEventID(channel: "news") == "e4")
        table.remove(id(1))
        #expect(table.lastEventID(channel: "news") == nil)
    }

    @Test func aMemberFollowsItsConnectionThroughSwaps() {
        var table = Table()
        for value in 1...3 as ClosedRange<UInt64> { table.insert("member \(value)", id: id(value), source: "s", channels: []) }
        table.remove(id(1))  // member 3 moves into slot 0
        #expect(table[id(3)] == "member 3")
        #expect(table.owners[table.records[id(3)]!.slot] == id(3))
    }
}
