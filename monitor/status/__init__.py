"""The status page: an HTML view of the snapshot and the history, for people (issue 13).

`monitor.status.routes.add_status_routes` puts it on the service's application.
"""
