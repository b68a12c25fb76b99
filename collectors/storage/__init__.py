"""Storage: the schema declared once, the single writer, retention, and the interface analyses read through."""
