"""The eventscope dashboard: a Streamlit app that reads only through the collectors' query API."""
