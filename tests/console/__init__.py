"""The security office's console."""
