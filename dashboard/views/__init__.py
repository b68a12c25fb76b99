"""The dashboard's pages: each view (a Streamlit script) orchestrates data.py and its own pure module,
``<page>_transforms.py`` beside it (its numbers, tables and figures); shared chart, colour and format code
lives in charts.py, colors.py and formats.py."""
