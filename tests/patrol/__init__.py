"""Guard patrols: checkpoints, plans, supervision, the patrol log, a night end to end."""
