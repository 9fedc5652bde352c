"""The drone detector: line protocol, Open Drone ID, tracks, the component, the firmware."""
