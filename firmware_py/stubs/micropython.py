"""Host stand-in for MicroPython's `micropython` module."""

scheduled = []


def const(value):
    return value


def schedule(func, arg):
    scheduled.append((func, arg))
    return True


def run_scheduled():
    while scheduled:
        func, arg = scheduled.pop(0)
        func(arg)


def alloc_emergency_exception_buf(size):
    return None
