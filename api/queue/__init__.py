"""The queue: how deep each worker queue is and why each of the caller's queued runs waits."""
