"""The Sales Channel page in the Airflow UI: queries (read-only), the HTML template and the FastAPI app.

``plugins/sales_channel_ui.py`` registers :func:`amazon_commerce_sync.ui.app.create_app` with Airflow.
"""
