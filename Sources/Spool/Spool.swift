// Spool: the engine applications embed — workflow executions, their event histories,
// workflow and activity tasks. The types of this module are being built; see Docs/architecture.md.
