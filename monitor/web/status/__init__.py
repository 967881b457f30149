"""The status page: an HTML view of the snapshot and the history, for people.

`monitor.web.status.routes.add_status_routes` puts it on the service's application.
"""
