"""RQ queues, jobs and schedules. Jobs take ids, bind their tenant themselves, and are idempotent."""
