"""Explaining a partition: the decision log, the report, the placement plan, bisection of a
region that breaks the build, and the picture.

Nothing here changes the IR: these modules read what the passes recorded (`decisions`),
turn it into ``report.json`` and its summary (`report`), save and replay placements
(`plan`), find the region to blame when a build or a run fails (`bisect`), and draw the
partition (`picture`, laid out by `layout`, no system package needed).
"""
