"""What running the services needs, shared by both: structured logs with request ids
(:mod:`.logs`), Prometheus metrics (:mod:`.metrics`), per-client rate limits and the
transform queue (:mod:`.limits`), and the HTTP middleware that ties them to each request
(:mod:`.http`). Nothing here imports a service."""
