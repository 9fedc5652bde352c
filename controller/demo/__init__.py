"""`make demo` (`python -m controller.demo`): a simulated wing, a Mosquitto of its own
(`mosquitto`, also used by the tests and the benches) and the office's console, on a virtual
clock (`run`).
"""
