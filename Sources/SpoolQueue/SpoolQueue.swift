// SpoolQueue: durable task queues. SpoolMatching's lock-free dispatcher matches tasks to
// pollers in memory; tasks that find no poller wait in a backlog kept in a SpoolLog.
// The types of this module are being built; see Docs/architecture.md.
