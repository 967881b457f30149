"""The status page: an HTML view of the snapshot and the history, for people (issue 13).

`monitor.web.status.routes.add_status_routes` puts it on the service's application.
"""
