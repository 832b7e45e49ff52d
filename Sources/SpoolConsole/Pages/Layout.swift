/// The frame of every page: head, navigation, the page's content.
struct Layout {
    /// The namespace the navigation links to.
    var namespace: String
    /// Which navigation entry is current.
    enum Section { case workflows, taskQueues, namespaces, none }
    var section: Section
    /// The CSRF token forms carry (``ConsoleAuth``).
    var csrf: String
    /// Whether a logout button is shown (API keys are required).
    var signedIn: Bool

    func page(title: String, _ content: HTML) -> HTML {
        func nav(_ label: String, _ href: String, _ this: Section) -> HTML {
            "<a href=\"\(href)\"\(this == section ? " aria-current=\"page\"" as HTML : "")>\(label)</a>"
        }
        let logout: HTML = signedIn
            ? "<form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\"><button type=\"submit\" class=\"link\">Log out</button></form>"
            : ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title) · Spool</title><link rel="stylesheet" href="/assets/console.css"><script src="/assets/console.js" defer></script></head>
            <body><header class="top"><a class="brand" href="/">Spool</a><nav>\(nav("Workflows", Links.workflows(namespace), .workflows))\(nav("Task queues", Links.taskQueues(namespace), .taskQueues))\(nav("Namespaces & store", Links.namespaces, .namespaces))</nav><span class="namespace" title="namespace">\(namespace)</span>\(logout)</header>
            <main>\(content)</main>
            <footer><label><input type="checkbox" id="autorefresh"> refresh every 5 s</label> · times in your time zone, UTC on hover</footer>
            </body></html>
            """
    }

    /// A hidden CSRF field for a form.
    var csrfField: HTML { "<input type=\"hidden\" name=\"csrf\" value=\"\(csrf)\">" }
}

/// The page of a refused or failed request: its status, a title and what was wrong.
func errorPage(_ error: PageError, layout: Layout) -> HTML {
    layout.page(title: error.title, """
        <h1>\(error.title)</h1><p class="error-message" data-status="\(error.status)">\(error.message)</p>
        <p><a href="\(Links.workflows(layout.namespace))">Back to the workflows</a></p>
        """)
}
