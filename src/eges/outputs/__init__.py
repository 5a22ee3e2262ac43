"""What a finished run gives its user: the run folder as an object (``eges.load``), exports, the report and the
side-by-side comparison of evaluations. Everything here reads a run folder through :class:`eges.outputs.run.Run`
and its paths from :mod:`eges.layout`; nothing here trains or rewrites a stage output."""
