"""HTTP and probe I/O: the shared session, the prober, what answers mean, discovery."""
