"""The "WAP reviews" view on Airflow's API server (see wap.ui.app)."""
