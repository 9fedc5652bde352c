"""Reporting to the security office over MQTT: the paho link on the daemon's loop (`mqtt`), the
outbox that sends the logbook's events (`outbox`), Home Assistant discovery (`discovery`),
plaintext-exposure checks of the broker settings (`exposure`) and the component that ties them
to the site (`component`).
"""
