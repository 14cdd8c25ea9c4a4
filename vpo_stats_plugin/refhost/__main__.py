"""``python -m vpo_stats_plugin.refhost``: the reference host's ``vpo`` command line."""

from vpo_stats_plugin.refhost.cli import main

if __name__ == "__main__":
    main()
