import ArgumentParser
import Spool
import SpoolToolSupport

/// `spool namespace`: register, describe, list and update the namespaces of a data directory.
struct NamespaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespace",
        abstract: "Register, describe, list and update the namespaces of a data directory.",
        discussion: """
            `default` always exists. Registrations are kept in DIR/namespaces. `describe` and \
            `list` open the engine read-only; `create` and `update` open it (taking the data \
            directory's lock: not while another process, such as `spool serve`, has it open). \
            Exit status: 0 done, 1 rejected by the engine (not found, already registered, a bad \
            value), 2 the directory cannot be used, 64 bad options.
            """,
        subcommands: [NamespaceCreate.self, NamespaceDescribe.self, NamespaceList.self, NamespaceUpdateCommand.self]
    )
}

/// `--retention 72h`: a Go-style duration (`30s`, `90m`, `72h`, `7d`).
struct RetentionOption: ExpressibleByArgument {
    var duration: Duration

    init?(argument: String) {
        guard let nanoseconds = VisibilityQuery.parseDuration(argument), nanoseconds > 0 else { return nil }
        duration = .nanoseconds(nanoseconds)
    }

    static var defaultValueDescription: String { "a duration such as 72h or 7d" }
}

struct NamespaceCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Register a namespace.")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace's name.")
    var namespace: String

    @Option(name: .long, help: "How long closed runs are kept, such as 72h or 7d (default: the engine's).")
    var retention: RetentionOption?

    @Option(name: .long, help: "A description.")
    var description: String = ""

    @Option(name: .long, help: "Who owns it.")
    var email: String = ""

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        let command = "namespace create"
        let engine = try options.directory.openEngine(command: command, create: false)
        let info: NamespaceInfo
        do {
            info = try engine.registerNamespace(namespace, description: description, ownerEmail: email, retention: retention?.duration)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print(json ? info.json.text : info.lines.joined(separator: "\n"))
    }
}

struct NamespaceDescribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Show a namespace.")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace's name.")
    var namespace: String = defaultNamespace

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        let command = "namespace describe"
        let engine = try options.directory.openEngine(command: command, create: false, readOnly: true)
        let info: NamespaceInfo
        do {
            info = try engine.describeNamespace(namespace)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print(json ? info.json.text : info.lines.joined(separator: "\n"))
    }
}

struct NamespaceList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the namespaces.")

    @OptionGroup var options: DataDirectoryOptions

    @Flag(name: .long, help: "Print one JSON object per namespace.")
    var json = false

    func run() async throws {
        let command = "namespace list"
        let engine = try options.directory.openEngine(command: command, create: false, readOnly: true)
        let all = engine.listNamespaces()
        try await closeEngine(engine, command: command)
        for info in all {
            print(json ? info.json.text : "\(info.name)  retention \(info.retention.map(durationText) ?? "default")  \(info.description)")
        }
    }
}

struct NamespaceUpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Change a namespace's retention, description or owner.")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace's name.")
    var namespace: String

    @Option(name: .long, help: "How long closed runs are kept, such as 72h or 7d.")
    var retention: RetentionOption?

    @Option(name: .long, help: "A new description.")
    var description: String?

    @Option(name: .long, help: "A new owner.")
    var email: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        if retention == nil, description == nil, email == nil {
            throw ValidationError("nothing to change: give --retention, --description or --email")
        }
    }

    func run() async throws {
        let command = "namespace update"
        let engine = try options.directory.openEngine(command: command, create: false)
        let info: NamespaceInfo
        do {
            info = try engine.updateNamespace(namespace, Spool.NamespaceUpdate(description: description, ownerEmail: email,
                                                                        retention: retention.map { .some($0.duration) }))
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print(json ? info.json.text : info.lines.joined(separator: "\n"))
    }
}

/// `spool search-attribute`: register, list and remove custom search attributes.
struct SearchAttributeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-attribute",
        abstract: "Register, list and remove the custom search attributes of a namespace.",
        discussion: """
            Registered attributes can be named in `spool workflow list --query` and `count`, and \
            in List and Count through `spool serve`. Exit status as `spool namespace`.
            """,
        subcommands: [SearchAttributeCreate.self, SearchAttributeList.self, SearchAttributeRemove.self]
    )
}

/// `--type Keyword|Text|Int|Double|Bool|Datetime|KeywordList` (Temporal's names).
struct IndexedValueTypeOption: ExpressibleByArgument {
    var type: IndexedValueType

    init?(argument: String) {
        guard let found = IndexedValueType.allCases.first(where: { $0.description.lowercased() == argument.lowercased() }) else { return nil }
        type = found
    }

    static var allValueStrings: [String] { IndexedValueType.allCases.map(\.description) }
}

struct SearchAttributeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Register a custom search attribute.")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace.")
    var namespace: String = defaultNamespace

    @Option(name: .long, help: "The attribute's name.")
    var name: String

    @Option(name: .long, help: "Its type: Keyword, Text, Int, Double, Bool, Datetime or KeywordList.")
    var type: IndexedValueTypeOption

    func run() async throws {
        let command = "search-attribute create"
        let engine = try options.directory.openEngine(command: command, create: false)
        do {
            try engine.addSearchAttributes(namespace: namespace, [name: type.type])
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print("\(name): \(type.type) in namespace \(namespace)")
    }
}

struct SearchAttributeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a namespace's custom search attributes (and, with --all, the predefined ones).")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace.")
    var namespace: String = defaultNamespace

    @Flag(name: .long, help: "Also list Temporal's predefined attributes.")
    var all = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        let command = "search-attribute list"
        let engine = try options.directory.openEngine(command: command, create: false, readOnly: true)
        let custom: [String: IndexedValueType]
        do {
            custom = try engine.searchAttributes(namespace: namespace)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        var rows = custom.sorted { $0.key < $1.key }.map { (name: $0.key, type: $0.value, predefined: false) }
        if all { rows += VisibilityQuery.predefinedAttributes.map { (name: $0.name, type: $0.type, predefined: true) } }
        for row in rows {
            if json {
                print(JSON.object([("name", .string(row.name)), ("type", .string(row.type.description)), ("predefined", .bool(row.predefined))]).text)
            } else {
                print("\(row.name)  \(row.type)\(row.predefined ? "  (predefined)" : "")")
            }
        }
    }
}

struct SearchAttributeRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Unregister custom search attributes.")

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .long, help: "The namespace.")
    var namespace: String = defaultNamespace

    @Option(name: .long, help: "An attribute to remove (repeatable).")
    var name: [String]

    func validate() throws {
        if name.isEmpty { throw ValidationError("give at least one --name") }
    }

    func run() async throws {
        let command = "search-attribute remove"
        let engine = try options.directory.openEngine(command: command, create: false)
        do {
            try engine.removeSearchAttributes(namespace: namespace, name)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print("removed \(name.joined(separator: ", ")) from namespace \(namespace)")
    }
}

extension NamespaceInfo {
    var json: JSON {
        .object([
            ("name", .string(name)), ("id", .string(id)), ("state", .string(state == .registered ? "Registered" : "\(state)")),
            ("description", .string(description)), ("ownerEmail", .string(ownerEmail)),
            ("retention", .string(retention.map(durationText) ?? "")),
            ("searchAttributes", .object(searchAttributes.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value.description)) })),
            ("data", .object(data.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ])
    }

    var lines: [String] {
        var lines = ["name             \(name)", "id               \(id)",
                     "retention        \(retention.map(durationText) ?? "the engine's default")"]
        if !description.isEmpty { lines.append("description      \(description)") }
        if !ownerEmail.isEmpty { lines.append("owner            \(ownerEmail)") }
        for (name, type) in searchAttributes.sorted(by: { $0.key < $1.key }) { lines.append("search attribute \(name) (\(type))") }
        return lines
    }
}

/// `d` as whole hours or days when it is one (`72h`, `7d`), else seconds.
func durationText(_ d: Duration) -> String {
    let seconds = d.components.seconds
    if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
    if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
    return "\(seconds)s"
}
