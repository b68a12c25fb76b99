"""The dashboard's pages; each orchestrates data.py, transforms.py and charts.py."""
