"""Remote commands from the security office and Home Assistant: parsing and signatures (`commands`,
pure), the rate limits and flood detection in front of them (`guard`), and the handler that
carries them out through the site (`component`).
"""
