"""The "WAP reviews" view in the Airflow UI: the review app at /wap on the API server, and its nav entry.

The app itself is :mod:`wap.ui.app` (installed with the `wap` package); this file only registers it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from wap.ui.app import create_app


class WapReviewsPlugin(AirflowPlugin):
    name = "wap_reviews"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": create_app(), "url_prefix": "/wap", "name": "WAP reviews"}]
    # Shown in Airflow's navigation; the UI frames /wap/reviews under /plugin/wap-reviews.
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "WAP reviews",
            "href": "/wap/reviews",
            "destination": "nav",
            "url_route": "wap-reviews",
            "icon": "/wap/icon.svg",
        }
    ]
