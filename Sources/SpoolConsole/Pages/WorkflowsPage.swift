import Spool

/// The workflows of a namespace: counts by status, a query box (the visibility query language),
/// the newest runs (or the query's order) one page at a time.
///
/// Cost: one List of one page through the visibility index and one Count answered from the
/// index's counters by status, whatever the store's size.
enum WorkflowsPage {
    static let defaultPageSize = 50
    static let maximumPageSize = 500
    static let maximumPage = 1_000_000

    struct Parameters: Equatable {
        var query = ""
        var pageSize = WorkflowsPage.defaultPageSize
        var page = 1
        var token: [UInt8]? = nil
    }

    /// The page's parameters from its URL; a clear 400 for each kind of bad value.
    static func parameters(_ request: ConsoleRequest) throws(PageError) -> Parameters {
        var parameters = Parameters()
        parameters.query = request.parameter("query") ?? ""
        if parameters.query.utf8.count > 4096 { throw .badRequest("The query is longer than 4096 bytes.") }
        if let size = request.parameter("size") {
            guard let value = Int(size), (1...maximumPageSize).contains(value) else {
                throw .badRequest("The page size must be a whole number from 1 to \(maximumPageSize) (got \(size)).")
            }
            parameters.pageSize = value
        }
        if let page = request.parameter("page") {
            guard let value = Int(page), (1...maximumPage).contains(value) else {
                throw .badRequest("The page number must be a whole number from 1 to \(maximumPage) (got \(page)).")
            }
            parameters.page = value
        }
        if let token = request.parameter("token") {
            guard token.utf8.count <= 4096, let bytes = Links.unhex(token) else {
                throw .badRequest("The page token is not one this console wrote (expected hex digits).")
            }
            parameters.token = bytes
        }
        if parameters.page > 1 && parameters.token == nil {
            throw .badRequest("Page \(parameters.page) needs the token of the page before it: follow the Next links from the first page.")
        }
        if parameters.page == 1 && parameters.token != nil {
            throw .badRequest("The first page takes no page token.")
        }
        return parameters
    }

    static func render(engine: SpoolEngine, namespace: String, request: ConsoleRequest, layout: Layout) throws -> HTML {
        let parameters = try parameters(request)
        let page: WorkflowExecutionPage
        do {
            page = try engine.listWorkflowExecutions(namespace: namespace, query: parameters.query, pageSize: parameters.pageSize,
                                                     nextPageToken: parameters.token)
        } catch {
            if error.code == .invalidArgument || error.code == .invalidPageToken { throw PageError.badRequest(error.message) }
            throw error
        }
        let counts = try engine.countWorkflowExecutions(namespace: namespace, query: "GROUP BY ExecutionStatus")
        var byStatus: [String: Int64] = [:]
        for group in counts.groups { if case .keyword(let name)? = group.values.first { byStatus[name] = group.count } }

        let statusLinks = HTML.join(WorkflowExecutionStatus.allCases.map { status in
            let n = byStatus[status.description] ?? 0
            let href = Links.workflows(namespace, query: "ExecutionStatus = '\(status.description)'")
            return "<a class=\"count status-\(status.description.lowercased())\" href=\"\(href)\" data-status=\"\(status.description)\"><span class=\"n\">\(n)</span> \(status.description)</a>"
        })
        let rows = HTML.join(page.executions.map { info in
            """
            <tr data-workflow-id="\(info.execution.workflowID)" data-run-id="\(info.execution.runID)">\
            <td>\(Format.status(info.status))</td>\
            <td class="id"><a href="\(Links.workflow(namespace, info.execution))">\(info.execution.workflowID)</a></td>\
            <td class="id mono" title="\(info.execution.runID)">\(String(info.execution.runID.prefix(8)))</td>\
            <td>\(info.type)</td><td>\(info.taskQueue)</td>\
            <td>\(Format.time(info.startTime))</td><td>\(Format.time(info.closeTime))</td><td class="num">\(info.historyLength)</td></tr>
            """
        })
        let table: HTML = page.executions.isEmpty
            ? "<p class=\"empty\">No workflow matches.</p>"
            : """
              <div class="scroll"><table class="workflows"><thead><tr><th>Status</th><th>Workflow id</th><th>Run</th><th>Type</th>\
              <th>Task queue</th><th>Started</th><th>Closed</th><th class="num">Events</th></tr></thead><tbody>\(rows)</tbody></table></div>
              """
        var pager: [HTML] = []
        if parameters.page > 1 {
            pager.append("<a href=\"\(Links.workflows(namespace, query: parameters.query, pageSize: request.parameter("size").map { _ in parameters.pageSize }))\">First page</a>")
        }
        pager.append("<span>Page \(parameters.page)</span>")
        if let next = page.nextPageToken {
            pager.append("<a rel=\"next\" href=\"\(Links.workflows(namespace, query: parameters.query, pageSize: request.parameter("size").map { _ in parameters.pageSize }, page: parameters.page + 1, token: next))\">Next page</a>")
        }
        return layout.page(title: "Workflows", """
            <h1>Workflows</h1>
            <p class="counts">\(statusLinks) <span class="total">\(counts.count) in all</span></p>
            <form method="get" action="\(Links.workflows(namespace))" class="query">
            <input type="search" name="query" value="\(parameters.query)" placeholder="WorkflowType = 'order' AND ExecutionStatus = 'Running'" aria-label="visibility query">
            <button type="submit">Search</button></form>
            \(table)
            <nav class="pager">\(pager)</nav>
            """)
    }
}
