// Tests of SpoolQueue's durable task queues.
