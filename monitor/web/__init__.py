"""What is served over HTTP: the JSON API, HTTP caching, /metrics, the status page."""
