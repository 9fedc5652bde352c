"""Who may do what: hashed codes (`codes`), the pure gate that checks a code, its permissions,
duress and the lockout per source (`gate`), and the service that runs code checks off the loop
(`service`).
"""
