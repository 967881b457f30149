"""libertai-monitor: discovers LibertAI inference hosts, probes them and tells clients which one to use."""

__version__ = "0.1.0"
