"""Supervised wiring and power: loops read through an ADC (cut, short, alarm and normal told
apart), mains, battery and the siren line. `bands` is the pure decoder; the component that
polls the ADC on the daemon's clock lives in `controller.supervision.component`."""
