import Testing
@testable import Spool

/// Issue 21, point 7: routing to one host (the seed's file-processing example). Every host's
/// worker polls the shared queue `files` for the download and its own queue (`host-a`,
/// `host-b`) for the steps that need the downloaded file; the download names its host's queue,
/// and the workflow schedules the next step there, so it runs where the file is.
@Suite struct SpoolWorkerRoutingTests {
    /// download (shared queue) → process (the downloading host's queue) → complete with both hosts.
    static let fileWorkflow: WorkflowDefinition = { context in
        var downloadedOn: String?
        for event in context.history {
            guard case .activityTaskCompleted(let completed) = event.attributes,
                  let text = completed.result?.first.map({ String(decoding: $0.data, as: UTF8.self) }) else { continue }
            if let queue = downloadedOn {
                return [.completeWorkflowExecution(.init(result: .binary(Array("\(queue)|\(text)".utf8))))]
            }
            downloadedOn = text
        }
        if let queue = downloadedOn {
            if context.history.filter({ $0.eventType == .activityTaskScheduled }).count == 2 { return [] }
            return [scheduleActivity("process", type: "process", queue: queue)]
        }
        if context.history.contains(where: { $0.eventType == .activityTaskScheduled }) { return [] }
        return [scheduleActivity("download", type: "download", queue: "files")]
    }

    @Test func stepsAfterTheDownloadRunOnTheHostThatDownloaded() async throws {
        let h = try EngineHarness()
        var workers: [SpoolWorker] = []
        for host in ["host-a", "host-b"] {
            // The shared queue: workflows and downloads, on any host.
            let shared = SpoolWorker(engine: h.engine, taskQueue: "files", identity: host)
            shared.registerWorkflow("file", Self.fileWorkflow)
            shared.registerActivity("download") { _ in .binary(Array(host.utf8)) }
            // The host's own queue: only this host polls it.
            let local = SpoolWorker(engine: h.engine, taskQueue: host, identity: host)
            local.registerActivity("process") { _ in .binary(Array(host.utf8)) }
            workers += [shared, local]
        }
        let running = workers.map { worker in Task { await worker.run() } }
        var runs: [WorkflowExecution] = []
        for index in 0..<8 { runs.append(try await h.start("file-\(index)", type: "file", queue: "files")) }
        for run in runs {
            let close = try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true,
                                                                       historyEventFilterType: .closeEvent).history.first
            guard case .workflowExecutionCompleted(let completed)? = close?.attributes,
                  let result = completed.result?.first.map({ String(decoding: $0.data, as: UTF8.self) }) else {
                Issue.record("\(run) did not complete"); continue
            }
            let hosts = result.split(separator: "|").map(String.init)
            #expect(hosts.count == 2 && hosts[0] == hosts[1], "\(run): downloaded on \(hosts.first ?? "?"), processed on \(hosts.last ?? "?")")
            // The history says the same: the process activity went to the download's host queue and
            // was started by that host's worker.
            let history = try await h.history(run)
            let processQueue = history.compactMap { event -> String? in
                guard case .activityTaskScheduled(let a) = event.attributes, a.activityType == "process" else { return nil }
                return a.taskQueue
            }
            let starters = history.compactMap { event -> String? in
                guard case .activityTaskStarted(let a) = event.attributes else { return nil }
                return a.identity
            }
            #expect(processQueue == [hosts[0]])
            #expect(starters == [hosts[0], hosts[0]])
        }
        for worker in workers { await worker.stop() }
        for task in running { await task.value }
    }
}
