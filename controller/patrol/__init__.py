"""Guard patrols: checkpoints a guard proves a visit at, plans that say when rounds are due,
and the supervisor that turns visits and the clock into round events (issue 18).

- `badges`: badge numbers, hashed like codes, and the book that maps a badge to its user;
- `plan`: the rounds a plan expects, from the schedule's calendar (pure);
- `supervisor`: visits and time in, patrol events out (pure);
- `component`: the supervisor on the site's port, fed by the checkpoint drivers.

The package's `__init__` imports nothing, so the config can name its helpers without a cycle.
"""
