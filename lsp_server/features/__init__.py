"""The handlers, one module per concern, as plain module-level functions (registered in ``app.py``)."""
