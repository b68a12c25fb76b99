"""Scenarios (to come): named, seeded runs of the storefront plus faults for a set time, each with a
plain-language description of what happens and what the dashboard should show."""
