import Spool
import SpoolTestSupport
import Testing
@testable import SpoolConsole

/// The pages through ``Console/handle(_:)`` on an engine on a temporary directory: what they
/// show, the bad input they refuse (with a status and a message, never unescaped markup), and
/// the checks on forms and sessions. The browser tests (Tests/Python/test_console.py) drive the
/// same pages through `spool serve --ui` in Chromium.
@Suite struct ConsolePagesTests {
    let directory = TemporaryDirectory("spool-console-test")
    let engine: SpoolEngine

    init() throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .none)
        engine = try SpoolEngine.open(directory: directory.path, configuration: configuration)
    }

    func get(_ console: Console, _ path: String, cookies: [String: String] = ["spool_csrf": "t"]) async -> ConsoleResponse {
        let (pathPart, queryPart) = path.firstIndex(of: "?").map { (String(path[..<$0]), String(path[path.index(after: $0)...])) } ?? (path, "")
        let segments = pathPart.split(separator: "/").map { percentDecode($0)! }
        return await console.handle(ConsoleRequest(method: .get, segments: segments, rawPath: pathPart,
                                                   query: parseFormEncoded(queryPart)!, cookies: cookies))
    }

    func post(_ console: Console, _ path: String, _ form: [(String, String)], cookies: [String: String] = ["spool_csrf": "t"],
              origin: String? = nil) async -> ConsoleResponse {
        let segments = path.split(separator: "/").map { percentDecode($0)! }
        return await console.handle(ConsoleRequest(method: .post, segments: segments, rawPath: path, query: [], form: form,
                                                   cookies: cookies, origin: origin, host: "127.0.0.1:8233"))
    }

    func start(_ id: String, input: Payloads? = nil) async throws -> WorkflowExecution {
        let response = try await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "order", taskQueue: "q", input: input))
        return WorkflowExecution(workflowID: id, runID: response.runID)
    }

    @Test func theWorkflowsPageListsRunsWithCountsAndPages() async throws {
        let console = Console(engine: engine, configuration: .init())
        for index in 0..<3 { _ = try await start("wf-\(index)") }
        let page = await get(console, "/namespaces/default/workflows?size=2")
        #expect(page.status == 200)
        #expect(page.text.contains("data-status=\"Running\"><span class=\"n\">3</span>"))
        #expect(page.text.contains("data-workflow-id=\"wf-2\"") && page.text.contains("data-workflow-id=\"wf-1\""))
        #expect(!page.text.contains("data-workflow-id=\"wf-0\""))
        let next = try #require(page.text.range(of: "rel=\"next\" href=\"").map { page.text[$0.upperBound...].prefix { $0 != "\"" } })
        let second = await get(console, next.replacingOccurrences(of: "&amp;", with: "&"))
        #expect(second.status == 200 && second.text.contains("data-workflow-id=\"wf-0\"") && second.text.contains("Page 2"))
        await engine.closeQuietly()
    }

    @Test func badInputGetsAClearPageWithItsStatus() async throws {
        let console = Console(engine: engine, configuration: .init())
        let execution = try await start("real")
        let cases: [(String, Int, String)] = [
            ("/namespaces/default/workflows/real/no-such-run", 404, "No run"),
            ("/namespaces/default/workflows/nobody", 404, "No workflow with the id"),
            ("/namespaces/default/workflows?query=WorkflowType%20%3D", 400, "invalid query"),
            ("/namespaces/default/workflows?query=Nope%20%3D%201", 400, "unknown search attribute"),
            ("/namespaces/default/workflows?page=99999999999999999999999", 400, "page number"),
            ("/namespaces/default/workflows?page=1000001&token=00", 400, "page number"),
            ("/namespaces/default/workflows?page=5", 400, "needs the token"),
            ("/namespaces/default/workflows?page=2&token=zz", 400, "page token"),
            ("/namespaces/default/workflows?page=2&token=0123456789", 400, "token"),
            ("/namespaces/default/workflows?size=0", 400, "page size"),
            ("/namespaces/nowhere/workflows", 404, "No namespace"),
            ("/namespaces/default/task-queues/neither/q", 404, "workflow or activity"),
            ("/no/such/page", 404, "No page"),
        ]
        for (path, status, message) in cases {
            let response = await get(console, path)
            #expect(response.status == status, "\(path)")
            #expect(response.text.contains(message), "\(path): \(response.text)")
        }
        // Markup in the request is shown as text.
        let markup = await get(console, "/namespaces/default/workflows/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        #expect(markup.status == 404 && markup.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !markup.text.contains("<script>alert"))
        _ = execution
        await engine.closeQuietly()
    }

    @Test func markupInAWorkflowIdAndAPayloadIsEscapedEverywhere() async throws {
        let console = Console(engine: engine, configuration: .init())
        let id = "<b id=\"evil\">x</b>"
        let execution = try await start(id, input: .json(#""<img src=x onerror=alert(1)>""#))
        for path in ["/namespaces/default/workflows", Links.workflow("default", execution)] {
            let page = await get(console, path)
            #expect(page.status == 200, "\(path)")
            #expect(!page.text.contains("<b id=") && !page.text.contains("<img"), "\(path)")
            #expect(page.text.contains("&lt;b id=&quot;evil&quot;&gt;x&lt;/b&gt;"), "\(path)")
        }
        let run = await get(console, Links.workflow("default", execution))
        #expect(run.text.contains("&lt;img src=x onerror=alert(1)&gt;"))
        await engine.closeQuietly()
    }

    @Test func formsNeedTheCookiesTokenAndTheConsolesOrigin() async throws {
        let console = Console(engine: engine, configuration: .init())
        let execution = try await start("wf")
        let path = Links.workflow("default", execution) + "/terminate"
        let noCookie = await post(console, path, [("csrf", "t"), ("confirmed", "yes")], cookies: [:])
        #expect(noCookie.status == 403)
        let wrongToken = await post(console, path, [("csrf", "u"), ("confirmed", "yes")])
        #expect(wrongToken.status == 403)
        let otherSite = await post(console, path, [("csrf", "t"), ("confirmed", "yes")], origin: "http://evil.example")
        #expect(otherSite.status == 403)
        #expect(try engine.describeWorkflowExecution(execution: execution).executionInfo.status == .running)
        // Without confirmation: a page that asks; with it: terminated, and back to the run.
        let ask = await post(console, path, [("csrf", "t"), ("reason", "<why>")])
        #expect(ask.status == 200 && ask.text.contains("id=\"confirm\"") && ask.text.contains("&lt;why&gt;"))
        let done = await post(console, path, [("csrf", "t"), ("reason", "test"), ("confirmed", "yes")], origin: "http://127.0.0.1:8233")
        #expect(done.status == 303)
        #expect(try engine.describeWorkflowExecution(execution: execution).executionInfo.status == .terminated)
        let again = await post(console, path, [("csrf", "t"), ("confirmed", "yes")])
        #expect(again.status == 409)
        await engine.closeQuietly()
    }

    @Test func withAPIKeysEveryPageNeedsASession() async throws {
        let console = Console(engine: engine, configuration: .init(apiKeys: ["secret-key"]))
        let page = await get(console, "/namespaces/default/workflows?query=x")
        #expect(page.status == 303)
        #expect(page.headers.first { $0.0 == "Location" }?.1 == "/login?next=%2Fnamespaces%2Fdefault%2Fworkflows%3Fquery%3Dx")
        let asset = await get(console, "/assets/console.css", cookies: [:])
        #expect(asset.status == 200 && asset.contentType.hasPrefix("text/css"))
        let wrong = await post(console, "/login", [("csrf", "t"), ("key", "guess")])
        #expect(wrong.status == 401 && wrong.text.contains("not one of the server"))
        let right = await post(console, "/login", [("csrf", "t"), ("key", "secret-key")])
        #expect(right.status == 303)
        let cookie = try #require(right.headers.first { $0.0 == "Set-Cookie" && $0.1.hasPrefix("spool_session=") }?.1)
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
        let session = String(cookie.dropFirst("spool_session=".count).prefix { $0 != ";" })
        let signedIn = await get(console, "/namespaces/default/workflows", cookies: ["spool_csrf": "t", "spool_session": session])
        #expect(signedIn.status == 200)
        let forged = await get(console, "/namespaces/default/workflows", cookies: ["spool_csrf": "t", "spool_session": "0000"])
        #expect(forged.status == 303)
        _ = await post(console, "/logout", [("csrf", "t")], cookies: ["spool_csrf": "t", "spool_session": session])
        let after = await get(console, "/namespaces/default/workflows", cookies: ["spool_csrf": "t", "spool_session": session])
        #expect(after.status == 303)
        await engine.closeQuietly()
    }

    @Test func taskQueueActionsPauseResumeAndSetTheRate() async throws {
        let console = Console(engine: engine, configuration: .init())
        _ = try await start("wf")
        let base = Links.taskQueue("default", "q", .workflow)
        #expect(await post(console, base + "/pause", [("csrf", "t"), ("reason", "maintenance")]).status == 303)
        #expect(try engine.describeTaskQueue(taskQueue: "q", kind: .workflow).config.pause?.reason == "maintenance")
        let paused = await get(console, base)
        #expect(paused.status == 200 && paused.text.contains("maintenance") && paused.text.contains("id=\"resume-form\""))
        #expect(await post(console, base + "/resume", [("csrf", "t")]).status == 303)
        #expect(try engine.describeTaskQueue(taskQueue: "q", kind: .workflow).config.pause == nil)
        #expect(await post(console, base + "/rate", [("csrf", "t"), ("rate", "2.5"), ("reason", "slow down")]).status == 303)
        #expect(try engine.describeTaskQueue(taskQueue: "q", kind: .workflow).config.queueRateLimit?.requestsPerSecond == 2.5)
        #expect(await post(console, base + "/rate", [("csrf", "t"), ("rate", "-1")]).status == 400)
        #expect(await post(console, base + "/rate", [("csrf", "t"), ("rate", "")]).status == 303)
        #expect(try engine.describeTaskQueue(taskQueue: "q", kind: .workflow).config.queueRateLimit == nil)
        let list = await get(console, Links.taskQueues("default"))
        #expect(list.status == 200 && list.text.contains("data-queue=\"q\" data-kind=\"workflow\""))
        let store = await get(console, "/namespaces")
        #expect(store.status == 200 && store.text.contains("id=\"segments\">1<"))
        await engine.closeQuietly()
    }
}

extension SpoolEngine {
    func closeQuietly() async { try? await close() }
}
