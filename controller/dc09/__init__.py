"""Reporting to an alarm receiving centre over SIA DC-09 (docs/dc09.md): `frame` builds and
reads the frames (pure), `sender` talks to the centre's receivers, `component` runs it as the
logbook's second report channel, "dc09"."""
