"""Who may read and decide in the review view: Airflow's own users, permissions and secret.

Every route depends on :func:`current_user`, which is the API server's own user dependency (the JWT in the
``Authorization`` header or in Airflow's ``_token`` cookie). A plugin's FastAPI app is unauthenticated unless it
adds that dependency itself. An anonymous browser asking for a page is sent to Airflow's login and then back;
anything else anonymous gets 401 and no data.

A decision changes the approval Variable, so it needs the auth manager's permission to edit that Variable (in
the simple auth manager: role ``op`` or ``admin``), and a form token bound to the user and to the review the page
showed (:func:`form_token`): another site cannot forge the POST, and a page of one review cannot decide another.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import HTTPException, Request, status


class LoginRequired(Exception):
    """No authenticated Airflow user: the app answers with a redirect to the login (pages) or 401."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def current_user(request: Request) -> Any:
    """The authenticated Airflow user (the API server's ``get_user``), else :class:`LoginRequired`."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    try:
        return await get_user(request, None, await bearer_scheme(request))
    except HTTPException as error:
        if error.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            raise LoginRequired(str(error.detail)) from None
        raise


def user_name(user: Any) -> str:
    return user.get_name()


def login_url(next_url: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=next_url)


def can_edit_variable(user: Any, key: str) -> bool:
    """Whether Airflow's auth manager lets ``user`` change the Variable ``key`` (the REST API's own check)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import VariableDetails

    return get_auth_manager().is_authorized_variable(method="PUT", details=VariableDetails(key=key), user=user)


def _secret() -> bytes:
    """Airflow's JWT secret: shared by every API server replica, never sent to a browser."""
    from airflow.configuration import conf

    secret = conf.get("api_auth", "jwt_secret", fallback="") or conf.get("api", "secret_key", fallback="")
    if not secret:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "Airflow has no [api_auth] jwt_secret")
    return secret.encode()


def form_token(user: Any, dag_id: str, run_id: str, review_id: str) -> str:
    """The decision form's token: only this user's page of this review can produce it."""
    message = "\n".join([user_name(user), dag_id, run_id, review_id]).encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def check_form_token(token: str, user: Any, dag_id: str, run_id: str, review_id: str) -> None:
    if not hmac.compare_digest(token or "", form_token(user, dag_id, run_id, review_id)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "The decision form's token does not match this user and review: reload the review page and decide "
            "there (requests from other sites are refused).",
        )


def check_same_origin(request: Request) -> None:
    """Refuse a POST a browser marks as coming from another site (``Sec-Fetch-Site: cross-site``).

    The form token already makes a forged POST fail; this refuses it before anything is read. ``Origin`` is not
    compared with ``Host`` because a proxy in front of the API server may rewrite the host.
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        origin = request.headers.get("origin")
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Cross-site request refused (Origin {origin!r}).")
