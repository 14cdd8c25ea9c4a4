"""Processing statistics for VPO: records every processed file, shows it in a CLI and a dashboard."""

__version__ = "0.2.0"
