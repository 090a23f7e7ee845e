"""What dbtune publishes for the places DBAs already look: metrics and a health page.

``openmetrics`` turns report, ``refresh --status`` and ``status`` results into one
OpenMetrics exposition (for Prometheus, or node_exporter's textfile collector);
``page`` turns a report into one self-contained HTML file, with ``charts`` drawing
its inline SVG; ``refresh_runs`` reads the refresh history the page and the
metrics show; ``files`` writes a result atomically; ``fleet`` merges the results of
a fleet run into one exposition or one page.  Everything here works from the
results' JSON form (``as_dict``), the same one a fleet's child runs print.

May import ``core``, ``monitoring``, ``maintenance`` and ``migration``'s result types.
"""
