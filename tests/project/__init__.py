"""The project as a user meets it: a bare clone, the README, the demo, the installer, faults and fuzzing."""
